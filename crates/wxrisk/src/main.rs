//! The `wxrisk` command: parse arguments and hand over to [`wxrisk::cli`].

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = wxrisk::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(wxrisk::cli::run(cli))
}
