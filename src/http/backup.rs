//! `POST /admin/api/backup` (spec §14): a consistent snapshot of the whole data file, taken
//! while writes go on. The copy is written next to the data file (same disk, same privacy),
//! opened, unlinked at once (nothing is left behind, even if the client or the server goes
//! away), then streamed from the open file.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use tokio::sync::mpsc;

use super::blocking;
use super::stream::Chunks;
use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Bytes read from the copy per chunk, and chunks read ahead of the client at most.
const CHUNK: usize = 256 * 1024;
const AHEAD: usize = 4;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/api/backup").route(web::post().to(backup)));
}

async fn backup(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    static TAKEN: AtomicU64 = AtomicU64::new(0);
    let data = state.store.path().to_path_buf();
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".backup-{}-{}",
        std::process::id(),
        TAKEN.fetch_add(1, Ordering::Relaxed)
    ));
    let copy = data.with_file_name(name);
    let taken_at = state.store.now();
    let (file, summary) = blocking(&state, move |store| {
        let summary = store.backup_to(&copy)?;
        let file = std::fs::File::open(&copy);
        let _ = std::fs::remove_file(&copy);
        let file = file.map_err(|e| {
            crate::store::StoreError::Storage(format!("cannot read the backup copy: {e}"))
        })?;
        // The length sent is the open file's, whatever the summary could read.
        let bytes = file.metadata().map(|m| m.len()).map_err(|e| {
            crate::store::StoreError::Storage(format!("cannot read the backup copy: {e}"))
        })?;
        Ok((
            file,
            crate::store::backup::BackupSummary { bytes, ..summary },
        ))
    })
    .await?;
    tracing::info!(
        tables = summary.tables,
        entries = summary.entries,
        bytes = summary.bytes,
        "backup taken"
    );
    let (tx, rx) = mpsc::channel::<Bytes>(AHEAD);
    std::thread::Builder::new()
        .name("leadbase-backup".into())
        .spawn(move || {
            let mut file = file;
            loop {
                let mut buf = vec![0u8; CHUNK];
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Bytes::from(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        // The length was promised: a short body tells the client it failed.
                        tracing::error!(error = %e, "reading the backup copy failed");
                        break;
                    }
                }
            }
        })
        .map_err(|e| ApiError::internal(format!("cannot start the backup stream: {e}")))?;
    let stamp = taken_at.to_iso().replace([':', '.'], "-");
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"leadbase-{stamp}.redb\""),
        ))
        .insert_header(("x-leadbase-backup-entries", summary.entries.to_string()))
        .body(Chunks::new(rx, Some(summary.bytes))))
}
