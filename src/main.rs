//! The memcrab daemon: parse memcached's command line, then serve.

use std::process::ExitCode;

use memcrab::config::{self, Action};

fn main() -> ExitCode {
    let config = match config::parse_args(std::env::args_os()) {
        Ok(Action::Run(c)) => c,
        Ok(Action::Help(text)) | Ok(Action::Version(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}", e.message);
            return ExitCode::from(e.exit_code.clamp(1, 255) as u8);
        }
    };
    if let Err(e) = config.check_root_user() {
        eprintln!("{}", e.message);
        return ExitCode::from(e.exit_code.clamp(1, 255) as u8);
    }
    match memcrab::start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(71) // EX_OSERR, as memcached exits when it cannot listen
        }
    }
}
