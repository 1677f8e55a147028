//! `logbook config default` and `logbook config show`.

use std::io::Write;

use anyhow::Result;

use crate::cli::ConfigCommand;
use crate::config::{Config, default_config_toml};

pub fn run(config: &Config, command: &ConfigCommand) -> Result<()> {
    let text = match command {
        ConfigCommand::Default => default_config_toml(),
        ConfigCommand::Show => config.to_toml()?,
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
