//! The embedded outpost's provider list, written for every service of a command by one
//! [`OutpostWriter`]: Authentik replaces the whole list on each PATCH, so writes are serialised
//! and batched. Shared by the command's runs (it lives in the run context), so it depends on the
//! Authentik client only.

use serde_json::json;

use crate::authentik::models::Outpost;

/// `managed` id of the outpost Authentik runs inside its own server.
pub const EMBEDDED_OUTPOST: &str = "goauthentik.io/outposts/embedded";
/// Where outposts are listed.
pub const OUTPOSTS: &str = "outposts/instances/";

pub(super) fn embedded(outposts: impl IntoIterator<Item = Outpost>) -> Result<Outpost, String> {
    outposts
        .into_iter()
        .find(|o| o.managed.as_deref() == Some(EMBEDDED_OUTPOST))
        .ok_or_else(|| format!("no outpost with managed = {EMBEDDED_OUTPOST} in Authentik"))
}

/// Where a service waiting for its provider's attachment learns how it went.
type AttachDone = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Attaches providers to the embedded outpost for every service of the run. Authentik replaces
/// the whole `providers` list on each PATCH, so writes are serialised; services that ask while
/// a write is under way are attached together by the next one (one read and one PATCH for many
/// services, instead of a read-modify-write each).
#[derive(Default)]
pub struct OutpostWriter {
    waiting: std::sync::Mutex<Vec<(u64, AttachDone)>>,
    write: tokio::sync::Mutex<()>,
}

impl OutpostWriter {
    pub(super) async fn attach(&self, ak: &crate::authentik::Authentik, pk: u64) -> Result<(), String> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.queue().push((pk, done));
        {
            let _turn = self.write.lock().await;
            // Empty: an earlier writer took this request along.
            if !self.queue().is_empty() {
                // Whoever queues while the outpost is being read joins this write.
                let read = ak
                    .list::<Outpost>(OUTPOSTS, &[("managed__iexact", EMBEDDED_OUTPOST.to_string())])
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(embedded);
                let batch = std::mem::take(&mut *self.queue());
                let pks: Vec<u64> = batch.iter().map(|(pk, _)| *pk).collect();
                let outcome = match read {
                    Ok(outpost) => Self::write_batch(ak, outpost, &pks).await,
                    Err(e) => Err(e),
                };
                for (_, done) in batch {
                    let _ = done.send(outcome.clone());
                }
            }
        }
        result
            .await
            .unwrap_or_else(|_| Err("the outpost update was interrupted; run fix again".into()))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<(u64, AttachDone)>> {
        self.waiting.lock().expect("outpost queue")
    }

    /// Adds the missing providers to the outpost as just read, in one PATCH, and checks
    /// Authentik's answer holds them all.
    async fn write_batch(ak: &crate::authentik::Authentik, outpost: Outpost, pks: &[u64]) -> Result<(), String> {
        let mut providers = outpost.providers.clone();
        let missing: Vec<u64> = pks.iter().copied().filter(|pk| !providers.contains(pk)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        providers.extend(&missing);
        let path = format!("{OUTPOSTS}{}/", outpost.pk);
        let saved: Outpost = ak
            .patch(&path, &json!({ "providers": providers }))
            .await
            .map_err(|e| e.to_string())?;
        // Any later PATCH (Authentik's own or another tool's) replaces the list again; the
        // answer to ours tells what was stored.
        match missing.iter().find(|pk| !saved.providers.contains(pk)) {
            Some(pk) => Err(format!(
                "{} did not keep proxy provider {pk} after it was attached (another writer?); run fix again",
                outpost.name
            )),
            None => Ok(()),
        }
    }
}
