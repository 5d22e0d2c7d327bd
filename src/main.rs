use std::process::ExitCode;

use clap::Parser;
use leadbase::cli::{Cli, CliError, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.load_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("leadbase: {e}");
            return ExitCode::from(2);
        }
    };
    leadbase::logging::init("info,actix_server=warn,actix_web=warn");
    match run(cli.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leadbase: {e}");
            match e {
                CliError::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
