//! The data file on disk, before redb sees it. It holds every lead's contact details and every
//! webhook signing secret in plain text, so it is private to its owner: created 0600 in a
//! directory created 0700, and tightened at start when an older file is looser. An existing
//! directory is left as it is: it may not be leadbase's (`/var/lib`, a mounted volume), and with
//! the file private it shows other users names only; a directory others can write to gets a
//! warning, since they could swap the file itself.

use std::fs::{self, DirBuilder, Metadata, OpenOptions};
use std::io::{self, ErrorKind};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::OpenError;

#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Makes `path` ready for redb: created private when absent, tightened when looser, refused when
/// it exists but is empty (redb would take an empty file for a new database, and the server would
/// start over with no data and a new admin token, hiding a truncated copy or restore).
pub(super) fn prepare(path: &Path) -> Result<Created, OpenError> {
    let cannot = |what: &str, e: io::Error| OpenError::Other {
        path: path.to_path_buf(),
        reason: format!("cannot {what}: {e}"),
    };
    match fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Err(OpenError::Empty(path.to_path_buf())),
        Ok(meta) => tighten(path, &meta).map_err(|e| cannot("make it private (mode 0600)", e))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create(path).map_err(|e| cannot("create it", e))?;
            warn_if_others_can_write_the_directory(path);
            return Ok(Created(Some(path.to_path_buf())));
        }
        Err(e) => return Err(cannot("read its metadata", e)),
    }
    warn_if_others_can_write_the_directory(path);
    Ok(Created(None))
}

/// The file `prepare` made, if it made one: empty until redb has written its header, so if the
/// open fails before that, [`Created::undo`] removes it (else every later start would refuse it
/// as a truncated copy).
pub(super) struct Created(Option<std::path::PathBuf>);

impl Created {
    pub(super) fn undo(self) {
        if let Some(path) = self.0
            && fs::metadata(&path).is_ok_and(|m| m.len() == 0)
        {
            let _ = fs::remove_file(path);
        }
    }
}

fn create(path: &Path) -> io::Result<()> {
    if let Some(dir) = parent(path) {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(DIR_MODE);
        builder.create(dir)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    options.open(path).map(drop)
}

#[cfg(unix)]
fn tighten(path: &Path, meta: &Metadata) -> io::Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{mode:o}"),
        "the data file was readable by other users; made it private (mode 600)"
    );
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_: &Path, _: &Metadata) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_others_can_write_the_directory(path: &Path) {
    let dir = parent(path).unwrap_or(Path::new("."));
    let Ok(meta) = fs::metadata(dir) else { return };
    let mode = meta.permissions().mode();
    // The sticky bit (as on /tmp) keeps others from renaming or removing a file they do not own.
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            "other users can write to the data file's directory and could replace the file; chmod go-w it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_write_the_directory(_: &Path) {}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|d| !d.as_os_str().is_empty())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::store::Store;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_existing_empty_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leadbase.redb");
        std::fs::File::create(&path).unwrap();
        let message = match Store::open(&path) {
            Ok(_) => panic!("an empty data file was opened as a new database"),
            Err(e) => e.to_string(),
        };
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("is empty"), "{message}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as found");
    }

    #[test]
    fn a_looser_existing_file_is_tightened_to_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leadbase.redb");
        Store::open(&path).unwrap().shutdown();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(&path).unwrap().shutdown();
        assert_eq!(mode(&path), 0o600);
    }
}
