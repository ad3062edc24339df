fn main() -> std::process::ExitCode {
    ssoctl::cli::main()
}
