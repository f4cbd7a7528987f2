//! Whether a resource policy (an SNS topic's access policy) lets an AWS service principal
//! do an action: an Allow whose principal names the service or anyone and whose action
//! matches, and no Deny that matches the same. Conditions are taken as holding, as they do
//! for the account's own alarms (`aws:SourceAccount`, `AWS:SourceOwner`): this answers "is
//! the statement there", not IAM's whole evaluation.

use serde_json::Value;

/// The policy JSON allows `service` (e.g. `cloudwatch.amazonaws.com`) `action`.
pub fn allows_service(policy: &str, service: &str, action: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let statements = match &doc["Statement"] {
        Value::Array(all) => all.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => vec![],
    };
    let applies = |st: &&Value| names_principal(&st["Principal"], service) && names_action(&st["Action"], action);
    let matching: Vec<&Value> = statements.into_iter().filter(applies).collect();
    matching.iter().any(|st| st["Effect"] == "Allow") && !matching.iter().any(|st| st["Effect"] == "Deny")
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn names_principal(p: &Value, service: &str) -> bool {
    p == "*" || strings(&p["AWS"]).contains(&"*") || strings(&p["Service"]).contains(&service)
}

fn names_action(a: &Value, action: &str) -> bool {
    strings(a)
        .iter()
        .any(|pattern| glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase()))
}

/// IAM's action wildcards: `*` any run of characters, `?` one (over bytes: no char boundary
/// to split on).
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((c, rest)) => t
                .split_first()
                .is_some_and(|(d, tail)| (*c == b'?' || c == d) && go(rest, tail)),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CW: &str = "cloudwatch.amazonaws.com";

    #[test]
    fn the_stacks_statement_or_snss_default_lets_cloudwatch_publish() {
        let stack = r#"{"Statement":[{"Sid":"AlarmsPublish","Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},
            "Action":"sns:Publish","Resource":"arn:aws:sns:us-east-1:1:t","Condition":{"StringEquals":{"aws:SourceAccount":"1"}}}]}"#;
        assert!(allows_service(stack, CW, "sns:Publish"));
        let default = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},
            "Action":["SNS:GetTopicAttributes","SNS:Publish"],"Condition":{"StringEquals":{"AWS:SourceOwner":"1"}}}]}"#;
        assert!(allows_service(default, CW, "sns:Publish"));
        let wildcard = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sns:*"}}"#;
        assert!(allows_service(wildcard, CW, "sns:Publish"));
    }

    #[test]
    fn another_service_a_deny_or_no_policy_does_not() {
        let events_only = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sns:Publish"}]}"#;
        assert!(!allows_service(events_only, CW, "sns:Publish"));
        let denied = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"SNS:Publish"},
            {"Effect":"Deny","Principal":{"Service":["cloudwatch.amazonaws.com"]},"Action":"sns:Pub*"}]}"#;
        assert!(!allows_service(denied, CW, "sns:Publish"));
        let other_action = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"sns:Subscribe"}]}"#;
        assert!(!allows_service(other_action, CW, "sns:Publish"));
        assert!(!allows_service("", CW, "sns:Publish"));
    }

    #[test]
    fn action_wildcards() {
        assert!(glob("sns:*", "sns:publish"));
        assert!(glob("sns:pub?ish", "sns:publish"));
        assert!(glob("*", "sns:publish"));
        assert!(!glob("sns:p", "sns:publish"));
        assert!(!glob("kms:*", "sns:publish"));
        assert!(!glob("sns:é*", "sns:publish"));
    }
}
