//! What operators see: one line per service (`✓ grafana (oidc) — Authentik app present, redirects
//! match`, `❌ redmine (oauth) — redirect URI mismatch: ...`), bootstrap's `[svc sso] ...` event
//! lines, `--json`, and the exit code (0 all green, 1 drift or pending changes, 2 error).

use crate::capabilities::Mode;
use crate::runner::{ServiceReport, Status};

/// The lines for one service, as printed.
pub fn lines(report: &ServiceReport, mode: Mode) -> Vec<String> {
    let head = format!("{} ({})", report.service, report.sso_type);
    let mut out = Vec::new();
    if mode == Mode::Apply {
        out.extend(report.events.iter().map(|e| format!("[{} sso] {e}", report.service)));
        // One registration line per service that changed: `registered` when this run created (or
        // adopted) its provider or application, `updated` when it only changed what differed.
        let registered = report.changes.iter().any(|c| {
            (c.starts_with("created ") || c.starts_with("adopted "))
                && (c.contains(" provider ") || c.contains(" application "))
        });
        if report.status != Status::Error && registered {
            out.push(format!("[{} sso] registered", report.service));
        } else if report.status != Status::Error && !report.changes.is_empty() {
            let n = report.changes.len();
            out.push(format!(
                "[{} sso] updated ({n} change{})",
                report.service,
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    match report.status {
        Status::Error => {
            out.push(format!("❌ {head} — {}", report.error.as_deref().unwrap_or("error")));
            // What an apply did before failing (Authentik objects) is worth knowing.
            out.extend(report.changes.iter().map(|c| format!("    {c}")));
        }
        Status::Drift => {
            let what: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
            out.push(format!("❌ {head} — {}", what.join("; ")));
        }
        Status::Ok => match mode {
            Mode::Check => out.push(format!("✓ {head} — {}", report.summary)),
            Mode::Apply => {
                let note = if report.changes.is_empty() { " (no changes)" } else { "" };
                out.push(format!("✓ {head} — {}{note}", report.summary));
                out.extend(report.changes.iter().map(|c| format!("    {c}")));
            }
            Mode::Plan if report.changes.is_empty() => out.push(format!("✓ {head} — up to date")),
            Mode::Plan => {
                let n = report.changes.len();
                out.push(format!(
                    "~ {head} — {n} change{} pending",
                    if n == 1 { "" } else { "s" }
                ));
                out.extend(report.changes.iter().map(|c| format!("    would {c}")));
            }
        },
    }
    out.extend(report.warnings.iter().map(|w| format!("⚠ {} — {w}", report.service)));
    out
}

/// Counts of a run, for the summary line and `--json`.
#[derive(Debug, serde::Serialize)]
pub struct Totals {
    pub services: usize,
    pub green: usize,
    pub drifted: usize,
    pub failed: usize,
    /// Services whose run changed something (apply) or would (plan).
    pub changed: usize,
    pub warnings: usize,
    pub elapsed_ms: u128,
}

pub fn totals(reports: &[ServiceReport], elapsed: std::time::Duration) -> Totals {
    let count = |status: Status| reports.iter().filter(|r| r.status == status).count();
    Totals {
        services: reports.len(),
        green: count(Status::Ok),
        drifted: count(Status::Drift),
        failed: count(Status::Error),
        changed: reports
            .iter()
            .filter(|r| r.status == Status::Ok && !r.changes.is_empty())
            .count(),
        warnings: reports.iter().map(|r| r.warnings.len()).sum(),
        elapsed_ms: elapsed.as_millis(),
    }
}

/// The last line: `12 green, 1 drifted, 0 failed in 0.41 s`.
pub fn summary(reports: &[ServiceReport], mode: Mode, elapsed: std::time::Duration) -> String {
    let t = totals(reports, elapsed);
    let secs = elapsed.as_secs_f64();
    let warnings = match t.warnings {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    };
    match mode {
        Mode::Check => format!(
            "{} green, {} drifted, {} failed{warnings} in {secs:.2} s",
            t.green, t.drifted, t.failed
        ),
        Mode::Apply => format!(
            "{} configured ({} changed), {} failed{warnings} in {secs:.2} s",
            t.green, t.changed, t.failed
        ),
        Mode::Plan => format!(
            "{} up to date, {} with changes pending, {} failed in {secs:.2} s",
            t.green - t.changed,
            t.changed,
            t.failed
        ),
    }
}

/// 0 all green, 1 drift (check) or pending changes (plan), 2 any error.
pub fn exit_code(reports: &[ServiceReport], mode: Mode) -> u8 {
    if reports.iter().any(|r| r.status == Status::Error) {
        2
    } else if reports.iter().any(|r| r.status == Status::Drift)
        || (mode == Mode::Plan && reports.iter().any(|r| !r.changes.is_empty()))
    {
        1
    } else {
        0
    }
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Apply => "apply",
        Mode::Check => "check",
        Mode::Plan => "plan",
    }
}

pub fn json(reports: &[ServiceReport], mode: Mode, elapsed: std::time::Duration) -> serde_json::Value {
    serde_json::json!({
        "mode": mode_name(mode),
        "exit_code": exit_code(reports, mode),
        "totals": totals(reports, elapsed),
        "services": reports,
    })
}

/// The service lines, without the summary (the demo prints several runs in a row).
pub fn print_reports(reports: &[ServiceReport], mode: Mode, json: bool) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&self::json(reports, mode, std::time::Duration::ZERO)).unwrap_or_default()
        );
    } else {
        let colour = colour_enabled();
        for r in reports {
            for line in lines(r, mode) {
                println!("{}", paint(&line, colour));
            }
        }
    }
    exit_code(reports, mode)
}

/// One command's output: the service lines, then the summary line (or one JSON document).
pub fn print_reports_with_summary(
    command: &str,
    reports: &[ServiceReport],
    mode: Mode,
    json: bool,
    elapsed: std::time::Duration,
) -> u8 {
    if json {
        let mut doc = self::json(reports, mode, elapsed);
        doc["command"] = serde_json::Value::from(command);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return exit_code(reports, mode);
    }
    let code = print_reports(reports, mode, false);
    if !reports.is_empty() {
        println!("{}", summary(reports, mode, elapsed));
    }
    code
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (no-color.org).
pub fn colour_enabled() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn paint(line: &str, colour: bool) -> String {
    use owo_colors::OwoColorize;
    if !colour {
        return line.to_string();
    }
    if line.starts_with('✓') {
        line.green().to_string()
    } else if line.starts_with('❌') {
        line.red().to_string()
    } else if line.starts_with('~') || line.starts_with('⚠') {
        line.yellow().to_string()
    } else if line.starts_with('[') {
        line.cyan().to_string()
    } else {
        line.dimmed().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::Finding;

    fn report(status: Status) -> ServiceReport {
        ServiceReport {
            service: "redmine".into(),
            sso_type: "oauth".into(),
            status,
            summary: "Authentik app present, redirects match".into(),
            findings: vec![Finding {
                kind: "redirect-uri-mismatch".into(),
                message: "redirect URI mismatch: x".into(),
            }],
            changes: vec![],
            events: vec!["a flow's own event".into()],
            warnings: vec![],
            error: None,
            blueprint: vec![],
            timing: Default::default(),
        }
    }

    #[test]
    fn lines_operators_know() {
        assert_eq!(
            lines(&report(Status::Ok), Mode::Check),
            vec!["✓ redmine (oauth) — Authentik app present, redirects match"]
        );
        assert_eq!(
            lines(&report(Status::Drift), Mode::Check),
            vec!["❌ redmine (oauth) — redirect URI mismatch: x"]
        );
        let mut r = report(Status::Ok);
        assert_eq!(
            lines(&r, Mode::Apply),
            vec![
                "[redmine sso] a flow's own event",
                "✓ redmine (oauth) — Authentik app present, redirects match (no changes)"
            ],
            "no registration line when nothing changed"
        );
        r.changes = vec!["created OAuth2 provider `redmine`".into(), "wrote .env: A".into()];
        assert_eq!(lines(&r, Mode::Apply)[1], "[redmine sso] registered");
        r.changes = vec!["updated OAuth2 provider `redmine`: redirect_uris".into()];
        assert_eq!(lines(&r, Mode::Apply)[1], "[redmine sso] updated (1 change)");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&[report(Status::Ok)], Mode::Check), 0);
        assert_eq!(exit_code(&[report(Status::Ok), report(Status::Drift)], Mode::Check), 1);
        assert_eq!(
            exit_code(&[report(Status::Drift), report(Status::Error)], Mode::Check),
            2
        );
        let mut pending = report(Status::Ok);
        pending.changes.push("create OAuth2 provider `redmine`".into());
        assert_eq!(exit_code(&[pending], Mode::Plan), 1);
    }
}
