//! What AWS answers that the planners read: a lifecycle action's result, a command's result.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActionResult {
    Continue,
    Abandon,
}

impl ActionResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Continue => "CONTINUE",
            ActionResult::Abandon => "ABANDON",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStatus {
    Success,
    Failed,
    TimedOut,
    Cancelled,
    /// Delivery failed (agent gone, instance terminated).
    Undeliverable,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandResult {
    pub instance_id: String,
    pub status: CommandStatus,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandResult {
    pub fn ok(&self) -> bool {
        self.status == CommandStatus::Success && self.exit_code == 0
    }
    /// The script's own reason for failing, when it gave one.
    pub fn exit(&self) -> Option<crate::scripts::ScriptExit> {
        crate::scripts::ScriptExit::of(self.exit_code)
    }
    /// A short reason for logs: status, exit code and the last line of stderr.
    pub fn summary(&self) -> String {
        let last = self.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        format!("{:?} exit {}: {}", self.status, self.exit_code, crate::redact(last))
    }
}
