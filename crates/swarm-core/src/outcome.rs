//! What an invocation did: the functions' response and what the action events are made of.
//! Below the workflows and the announcer, which both use it.

use serde::Serialize;

use crate::model::ActionResult;

/// What an invocation did; also the function's response payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub outcome: OutcomeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// How the lifecycle action was (or will be, for a held one) completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ActionResult>,
    pub detail: String,
    /// A dry-run retirement: what draining the node would do to each of its services.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<crate::plan::preview::ServicePreview>,
    /// The work was found done already (a copy of the event, or a later event about the same
    /// retirement): nothing is announced for it.
    #[serde(skip)]
    pub quiet: bool,
}

/// The kinds of outcome, serialized as the response's `outcome` ("already-ended", …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// The lifecycle action was completed with `result`.
    Completed,
    /// A terminating manager is held; the hook's timeout releases it.
    Held,
    /// The drain goes on after this invocation: the drain-check function finishes it.
    Draining,
    /// The node's retirement command runs after this invocation: the drain-check function
    /// reads it and ends the action.
    Retiring,
    /// Work without a lifecycle action was done.
    Done,
    /// The lifecycle action had ended before this invocation could complete it.
    AlreadyEnded,
    /// The instance's node is Ready and labelled already.
    AlreadyMember,
    Ignored,
    Invalid,
    DryRun,
    /// AWS refused the function's role: not retried.
    Denied,
    /// AWS rejected a request as invalid: not retried.
    Rejected,
}

impl Outcome {
    pub(crate) fn new(outcome: OutcomeKind, instance_id: Option<&str>, detail: impl Into<String>) -> Self {
        Outcome {
            outcome,
            instance_id: instance_id.map(str::to_string),
            result: None,
            detail: detail.into(),
            services: vec![],
            quiet: false,
        }
    }
}
