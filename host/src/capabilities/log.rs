//! `sso:flow/log`: diagnostics and operator-facing event lines, attributed to the service, capped
//! per message and per run, scrubbed of every secret the host knows and made printable on one line.

use super::redact::printable;
use super::state::RunState;
use crate::bindings::sso::flow::log as wit_log;

impl wit_log::Host for RunState {
    async fn log(&mut self, level: wit_log::Level, message: String) -> wasmtime::Result<()> {
        if let Some(message) = self.capped_message(message)? {
            let service = self.service.name.as_str();
            match level {
                wit_log::Level::Trace => tracing::trace!(service, "{message}"),
                wit_log::Level::Debug => tracing::debug!(service, "{message}"),
                wit_log::Level::Info => tracing::info!(service, "{message}"),
                wit_log::Level::Warn => tracing::warn!(service, "{message}"),
                wit_log::Level::Error => {
                    tracing::error!(service, "{message}");
                    self.record.last_error_log = Some(message);
                }
            }
        }
        Ok(())
    }

    async fn event(&mut self, message: String) -> wasmtime::Result<()> {
        if let Some(message) = self.capped_message(message)? {
            self.record.events.push(message);
        }
        Ok(())
    }
}

impl RunState {
    /// Truncates a guest message to 8 KiB and scrubs secrets; past the run's log quota the run is
    /// ended (a flood is a fault, not something to drop silently).
    fn capped_message(&mut self, mut message: String) -> wasmtime::Result<Option<String>> {
        const MAX: usize = 8 << 10;
        if message.len() > MAX {
            let mut cut = MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if self.record.log_bytes + message.len() > self.limiter.limits.log_bytes {
            return Err(wasmtime::format_err!(
                "{} exceeded its log quota of {} KiB",
                self.limiter.label,
                self.limiter.limits.log_bytes >> 10
            ));
        }
        self.record.log_bytes += message.len();
        Ok(Some(printable(&self.ctx.redactor.redact(&message))))
    }
}
