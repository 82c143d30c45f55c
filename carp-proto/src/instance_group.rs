//! The sync-group input of an [`Instance`] (see [`crate::group`]), apart
//! from the state machine's other inputs: it is called only for members
//! of a group.

use super::{Instance, Reason, State};
use crate::group::GroupCommand;
use crate::Nanos;

impl Instance {
    /// A request of the instance's sync group (see [`crate::group`]): the
    /// members act as one. Without a group, nothing calls this and the
    /// instance behaves exactly as before.
    pub fn handle_group(&mut self, now: Nanos, command: GroupCommand) {
        let now = self.tick(now);
        if self.shut_down {
            return;
        }
        match command {
            GroupCommand::Hold => {
                self.group_held = true;
                self.bow_out(now, Reason::GroupFault);
            }
            GroupCommand::Release if self.group_held => {
                self.group_held = false;
                if self.state == State::Backup {
                    self.arm_master_down(now);
                }
            }
            GroupCommand::TakeOver => {
                if self.state == State::Backup && !self.is_held() {
                    self.become_master(now, Reason::GroupTakeOver);
                }
            }
            GroupCommand::StepDown { leave } => {
                if self.state == State::Master {
                    self.emit_advert(now, leave);
                    self.become_backup(now, Reason::GroupStepDown);
                }
            }
            GroupCommand::Release => {}
        }
    }

    /// Held in BACKUP by the sync group ([`GroupCommand::Hold`]).
    pub fn group_held(&self) -> bool {
        self.group_held
    }
}
