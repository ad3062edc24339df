fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so a closed pipe (`ssoctl demo | head`) turns the next `println!` into
    // a panic and exit 101. Restoring the default action ends ssoctl the way it ends every other
    // Unix tool in a pipeline: quietly, when its reader is gone.
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; `SIG_DFL` is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    ssoctl::cli::main()
}
