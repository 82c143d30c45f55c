//! Which settings an input holds, by its layout: the wiki's shell files,
//! Red Hat's `vip-*.conf`, Debian's interfaces stanzas, a command line.

use super::settings::{command_words, parse_options, settings_of_file, Origin, Settings};
use super::{debian, redhat, wiki, Body, ImportError, Input};

/// The instances one input describes, each with the name of its source:
/// one per shell file or command line, one per UCARP stanza of an
/// interfaces file.
pub(super) fn settings_of(input: &Input) -> Result<Vec<(Settings, String)>, ImportError> {
    let name = input.name.display().to_string();
    match &input.body {
        Body::Shell(text) => Ok(vec![(
            settings_of_file(&input.name, text, wiki::VARIABLES)?,
            name,
        )]),
        Body::RedHat(text) => {
            let mut s = Settings::default();
            if let Some(id) = redhat::id_of(&input.name) {
                // The package's script takes the vhid from the file name;
                // an ID (or VID) in the file, sourced after, wins.
                let from = Origin::File {
                    path: input.name.clone(),
                    line: 1,
                    setting: "the id in the file name".into(),
                };
                let run = parse_options(&[format!("--vhid={id}")], &|| from.to_string())?;
                s.merge(Settings::from_run(run, &|_| from.clone())?);
            }
            s.merge(settings_of_file(&input.name, text, redhat::VARIABLES)?);
            Ok(vec![(s, name)])
        }
        Body::Interfaces(stanzas) => debian::instances(stanzas),
        Body::Args(words) => {
            let words = command_words(words)?;
            let at = || "command line".to_owned();
            let run = parse_options(&words, &at)?;
            Ok(vec![(Settings::from_run(run, &Origin::Flag)?, name)])
        }
    }
}
