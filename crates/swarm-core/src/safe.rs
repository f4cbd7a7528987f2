//! Validation of every value that can reach a shell on an instance.
//! Values come from tags, events and command output: they are checked against a strict
//! shape here and then passed to scripts as single-quoted environment assignments.

pub fn is_instance_id(s: &str) -> bool {
    s.len() >= 10
        && s.len() <= 19
        && s.starts_with("i-")
        && s[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// Swarm node ids are 25 lowercase alphanumerics.
pub fn is_node_id(s: &str) -> bool {
    s.len() == 25 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Cluster names: tag values that also name SSM parameters and DNS labels.
pub fn is_cluster_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

pub fn is_parameter_path(s: &str) -> bool {
    s.starts_with('/') && s.len() <= 900 && s.chars().all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
}

/// A DNS name: labels of letters, digits and hyphens, an optional trailing dot.
pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Builds the `commands` of an AWS-RunShellScript invocation: one assignment a variable,
/// every value single-quoted, then the script itself. Never interpolates into the script.
/// The agent writes the commands to a file and runs `sh -c <file>`, so a script's `#!` line
/// goes first: it is what picks the shell (the scripts need bash; `sh` is dash on Ubuntu).
pub fn script_commands(vars: &[(&str, String)], script: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(vars.len() + 2);
    let script = match script.split_once('\n') {
        Some((shebang, rest)) if shebang.starts_with("#!") => {
            out.push(shebang.to_string());
            rest
        }
        _ => script,
    };
    for (name, value) in vars {
        debug_assert!(name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        // shlex's quoting refuses NUL bytes; a value with one is replaced by an empty string.
        let quoted = shlex::try_quote(value)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| "''".into());
        out.push(format!("export {name}={quoted}"));
    }
    out.push(script.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-12345678"));
        assert!(!is_instance_id("i-123"));
        assert!(!is_instance_id("i-0123456789ABCDEF0"));
        assert!(!is_instance_id("i-01234567;reboot"));
    }

    #[test]
    fn names() {
        assert!(is_cluster_name("prod-blue_1"));
        assert!(!is_cluster_name("a$(touch /tmp/x)"));
        assert!(!is_cluster_name(""));
        assert!(is_dns_name("managers.swarm.internal."));
        assert!(!is_dns_name("managers;id.internal"));
        assert!(is_node_id("abcdefghijklmnopqrstuvwxy"));
        assert!(!is_node_id("abc"));
    }

    #[test]
    fn commands_quote_metacharacters() {
        let cmds = script_commands(
            &[("NAME", "x'; touch /tmp/pwned; echo '$(id)\n".into())],
            "echo \"$NAME\"",
        );
        assert_eq!(cmds.len(), 2);
        // The value is a single shell word: bash would assign it verbatim.
        let words = shlex::split(cmds[0].trim_start_matches("export ")).unwrap();
        assert_eq!(words, vec!["NAME=x'; touch /tmp/pwned; echo '$(id)\n".to_string()]);
        assert_eq!(cmds[1], "echo \"$NAME\"");
    }

    #[test]
    fn the_shebang_line_goes_first() {
        let cmds = script_commands(&[("A", "1".into())], "#!/bin/bash\nset -o pipefail\n");
        assert_eq!(cmds, vec!["#!/bin/bash", "export A=1", "set -o pipefail\n"]);
    }
}
