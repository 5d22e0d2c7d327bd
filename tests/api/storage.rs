//! The data file on disk: private to its owner, and never an empty file taken for a new
//! database.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::helpers::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_new_data_file_and_its_directory_are_private_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = data_dir.join("leadbase.redb");
    let out = leadbase_under_umask(&data, "022")
        .args(["tenant", "create", "--name", "Acme"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&data), 0o600, "the data file");
    assert_eq!(mode(&data_dir), 0o700, "the directory leadbase created");
}

#[test]
fn an_empty_data_file_is_refused_naming_it_and_left_as_found() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    std::fs::File::create(&data).unwrap();
    let out = leadbase(&data)
        .args(["tenant", "list"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
    assert!(stderr.contains("is empty"), "{stderr}");
    assert_eq!(std::fs::metadata(&data).unwrap().len(), 0, "left as found");
}
