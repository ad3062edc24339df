//! Two ssoctl runs on one stack (a cron `check` and a manual `fix`, or two operators): the stack
//! lock makes writers take turns, readers never wait, a create that loses a race to another
//! client adopts what that client made, and temp files of a crashed run are cleaned up.

mod common;

use std::time::Duration;

use common::*;
use ssoctl::runner::Status;
use ssoctl::stack::EnvFile;
use ssoctl::stack::lock::StackLock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_started_together_lose_nothing() {
    // One component cache for every process, filled first, so the runs overlap in their work
    // rather than in compilation.
    let cache = tempfile::tempdir().unwrap();
    let pairs: [(&[&str], &[&str]); 4] = [
        (&["bootstrap"], &["bootstrap"]),
        (&["bootstrap"], &["fix", "--all"]),
        (&["fix", "--all"], &["fix", "--all"]),
        (&["fix", "--all"], &["add", "grafana"]),
    ];
    for (round, (a, b)) in pairs.iter().enumerate() {
        let h = Harness::new("2026.8.3").await;
        if round == 0 {
            let out = ssoctl_command(h.root(), &["plan"])
                .env("SSOCTL_CACHE_DIR", cache.path())
                .output()
                .unwrap();
            assert!(out.status.code().is_some_and(|c| c < 2), "{out:?}");
        }
        let spawn = |args: &[&str]| {
            ssoctl_command(h.root(), args)
                .env("SSOCTL_CACHE_DIR", cache.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (first, second) = (spawn(a), spawn(b));
        let outputs = tokio::task::spawn_blocking(move || {
            [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()]
        })
        .await
        .unwrap();
        let what = format!("round {round}: `{}` and `{}`", a.join(" "), b.join(" "));
        for out in &outputs {
            assert!(
                out.status.success(),
                "{what}: exit {:?}\n{}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let env = EnvFile::load(&h.root().join(".env")).unwrap();
        assert!(env.duplicates().is_empty(), "{what}: {:?}", env.duplicates());
        assert_all_ok(&h.check(&implemented()).await);
        let objects = objects_per_name(&h);
        assert!(objects.values().all(|n| *n == 1), "{what}: duplicates: {objects:?}");
        assert!(
            ssoctl::stack::lock::leftover_temp_files(h.root()).is_empty(),
            "{what}: temp files left"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_the_lock_and_readers_do_not() {
    let h = Harness::new("2026.8.3").await;
    let held = StackLock::acquire(h.root(), "ssoctl fix --all (the test)", Duration::ZERO).unwrap();
    let env_before = std::fs::read(h.root().join(".env")).unwrap();
    // A writer gives up after --lock-timeout, naming the holder, having written nothing.
    let out = ssoctl(h.root(), &["fix", "grafana", "--lock-timeout", "1"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())) && stderr.contains("ssoctl fix --all (the test)"),
        "{stderr}"
    );
    assert!(stderr.contains("waiting for another ssoctl run"), "{stderr}");
    assert_eq!(h.sim.writes(), 0);
    assert_eq!(std::fs::read(h.root().join(".env")).unwrap(), env_before);
    // Readers do not wait for it.
    for args in [["check", "grafana"], ["plan", "grafana"]] {
        let out = ssoctl(h.root(), &args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?} reports the drift: {out:?}");
    }
    // Released, the writer goes ahead.
    drop(held);
    let out = ssoctl(h.root(), &["fix", "grafana", "--lock-timeout", "0"]).await;
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_files_of_a_crashed_run_are_reported_then_removed() {
    let h = Harness::new("2026.8.3").await;
    let leftovers = [".ssoctl-Ab12Cd", "packages/grafana/.ssoctl-Xy34Zw"];
    for f in leftovers {
        std::fs::write(h.root().join(f), format!("AUTHENTIK_ADMIN_TOKEN={TOKEN}\nBROKEN='\n")).unwrap();
    }
    // A reader lists them (they may hold secrets) but leaves them: a writer may be mid-write.
    let out = ssoctl(h.root(), &["check", "grafana"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(leftovers.iter().all(|f| stderr.contains(f)), "{stderr}");
    assert!(!stderr.contains(TOKEN), "never read, never printed: {stderr}");
    assert!(leftovers.iter().all(|f| h.root().join(f).exists()));
    // A writer holds the lock, so no other ssoctl is writing them: removed.
    let out = ssoctl(h.root(), &["fix", "grafana"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(stderr.contains("removed 2 temp file(s)"), "{stderr}");
    assert!(leftovers.iter().all(|f| !h.root().join(f).exists()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_loses_a_race_adopts_the_winner_and_compares_it() {
    let h = Harness::new("2026.8.3").await;
    assert_all_ok(&h.fix(&["grafana"]).await);
    // What another client creates while this run works: grafana's provider (with a stale
    // redirect URI) and its application, taken out of the world and put back right after this
    // run read the lists.
    let (provider, application) = h.sim.with_world(|w| {
        let pk = *w.oauth2.iter().find(|(_, p)| p.name == "grafana").unwrap().0;
        let mut provider = w.oauth2.remove(&pk).unwrap();
        provider.redirect_uris.truncate(1);
        provider.redirect_uris[0].url = "https://grafana.example.org/stale".into();
        let slug = w
            .applications
            .iter()
            .find(|(_, a)| a.slug == "grafana")
            .unwrap()
            .0
            .clone();
        let application = w.applications.remove(&slug).unwrap();
        ((pk, provider), (slug, application))
    });
    h.sim.after_request("GET", "/providers/oauth2/", 1, move |w| {
        w.oauth2.insert(provider.0, provider.1);
    });
    h.sim.after_request("GET", "/core/applications/", 1, move |w| {
        w.applications.insert(application.0, application.1);
    });
    let reports = h.fix(&["grafana"]).await;
    assert_all_ok(&reports);
    let changes = reports[0].changes.join("\n");
    assert!(changes.contains("adopted OAuth2 provider `grafana`"), "{changes}");
    assert!(changes.contains("adopted application `grafana`"), "{changes}");
    assert!(
        changes.contains("redirect"),
        "the adopted provider is compared and fixed: {changes}"
    );
    assert_eq!(reports[0].status, Status::Ok);
    assert_all_ok(&h.check(&["grafana"]).await);
    let objects = objects_per_name(&h);
    assert!(objects.values().all(|n| *n == 1), "{objects:?}");
}
