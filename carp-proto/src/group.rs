//! A sync group: instances (vhids, possibly on several interfaces) that
//! change state together, so that the addresses a gateway needs together
//! (its LAN and WAN addresses) are always on the same host.
//!
//! Like the rest of the core this does no I/O. The daemon tells the group
//! every state change of a member ([`Group::observe`]) and every change of
//! a member's own demote count ([`Group::set_demote`]); the group answers
//! with [`GroupCommand`]s for its members, which the daemon hands to them
//! ([`super::Instance::handle_group`]). The rules:
//!
//! 1. **Fault.** A member in INIT (its link is down) puts the group in
//!    FAULT: every member bows out (a master sends a leave advert and goes
//!    BACKUP, so that the peer's members take over at once) and is held in
//!    BACKUP, taking over for nothing, until every member is up again.
//!    A member that left for good (shutdown) does not count.
//! 2. **Take over as one.** A member that becomes MASTER for its own reason
//!    (master down, leave heard, peer demoted, preempt) makes every other
//!    member take over now ([`super::Reason::GroupTakeOver`]); a group
//!    therefore preempts as one, as soon as one member preempts.
//! 3. **Step down as one.** A member that goes from MASTER to BACKUP for
//!    its own reason makes every other master step down
//!    ([`super::Reason::GroupStepDown`]). After an administrator's step
//!    down they send a leave advert, so that the peer's members take over
//!    at once. After a preferred master was heard they send a normal final
//!    advert, as a yielding carp(4) master does: that master's group has
//!    already taken the other vhids over (rule 2), and a leave advert would
//!    make a third host's backups take over beside it.
//! 4. **One demote.** The group's demote count is the highest of its
//!    members' own ones, and every member advertises it: a failed health
//!    check on one member moves the whole group the way carp(4)'s demotion
//!    moves one vhid.
//!
//! Changes the group itself caused (the `Group*` reasons) are recorded but
//! never propagate again, so one event moves the group once.
//!
//! The election of each vhid is still carp(4)'s, per vhid: the group only
//! makes sure that its members all move when one does. It acts as one only
//! if its members rank the same on each host (same advbase, advskew,
//! preempt: the configuration checks it) and the hosts do not tie (an
//! address tie is settled per segment, possibly differently on each).

use super::action::{Reason, State};

/// What a group asks of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupCommand {
    /// FAULT: bow out (a master sends a leave advert and goes BACKUP) and
    /// stay BACKUP, taking over for nothing, until [`GroupCommand::Release`].
    Hold,
    /// The FAULT is over: a held member takes part in elections again,
    /// starting a fresh master-down interval (nothing for one not held).
    Release,
    /// Another member became master: a BACKUP member not held takes over.
    TakeOver,
    /// Another member stepped down: a MASTER member sends a final advert
    /// (a leave advert with `leave`) and goes BACKUP.
    StepDown {
        /// Bow out with a leave advert, for the peer to take over at once.
        leave: bool,
    },
}

/// The state of a group as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// Every member is MASTER.
    Master,
    /// Every member is BACKUP.
    Backup,
    /// A member is down (INIT): every member is held in BACKUP.
    Fault,
    /// Members disagree: only between two events, never once the group's
    /// commands are carried out.
    Mixed,
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GroupState::Master => "MASTER",
            GroupState::Backup => "BACKUP",
            GroupState::Fault => "FAULT",
            GroupState::Mixed => "MIXED",
        })
    }
}

/// What the group knows of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    /// Its current state.
    state: State,
    /// Left for good (INIT because of shutdown): no longer counted.
    left: bool,
    /// Its own demote count (health checks, configuration).
    demote: u8,
}

/// A sync group of members `0..len`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The members, by index.
    members: Vec<Member>,
    /// The member whose change last moved the group, and why.
    why: Option<(usize, Reason)>,
}

impl Group {
    /// A group whose members are now in `states`; call [`Group::start`]
    /// for the commands that make them consistent.
    pub fn new(states: impl IntoIterator<Item = State>) -> Self {
        Self {
            members: states
                .into_iter()
                .map(|state| Member {
                    state,
                    left: false,
                    demote: 0,
                })
                .collect(),
            why: None,
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The commands that make freshly grouped members consistent (at
    /// start, and after a reload regrouped running instances): a hold for
    /// every member if one is down; otherwise a release for every member
    /// (one held by a former group is free again) and, if one is MASTER, a
    /// take-over for the others.
    pub fn start(&mut self) -> Vec<(usize, GroupCommand)> {
        if let Some(down) = self.members.iter().position(|m| m.state == State::Init) {
            self.why = Some((down, Reason::LinkDown));
            return self.to_all(GroupCommand::Hold);
        }
        let mut commands = self.to_all(GroupCommand::Release);
        if let Some(master) = self.members.iter().position(|m| m.state == State::Master) {
            commands.extend(self.to_others(master, GroupCommand::TakeOver));
        }
        commands
    }

    /// Member `member` changed to `to` because of `reason`: what the other
    /// members (and, for a hold, the member itself) must do.
    pub fn observe(
        &mut self,
        member: usize,
        to: State,
        reason: Reason,
    ) -> Vec<(usize, GroupCommand)> {
        let was_fault = self.in_fault();
        let Some(m) = self.members.get_mut(member) else {
            return Vec::new();
        };
        let from = m.state;
        m.state = to;
        m.left = to == State::Init && reason == Reason::Shutdown;
        let fault = self.in_fault();
        if fault != was_fault {
            self.why = Some((member, reason));
            let command = if fault {
                GroupCommand::Hold
            } else {
                GroupCommand::Release
            };
            return self.to_all(command);
        }
        if fault || is_group_reason(reason) {
            return Vec::new();
        }
        match (from, to) {
            (_, State::Master) if from != State::Master => {
                self.why = Some((member, reason));
                self.to_others(member, GroupCommand::TakeOver)
            }
            (State::Master, State::Backup) => {
                self.why = Some((member, reason));
                let leave = reason != Reason::BetterMaster;
                self.to_others(member, GroupCommand::StepDown { leave })
            }
            _ => Vec::new(),
        }
    }

    /// Member `member`'s own demote count is now `demote`; returns the
    /// group's, which every member must advertise.
    pub fn set_demote(&mut self, member: usize, demote: u8) -> u8 {
        if let Some(m) = self.members.get_mut(member) {
            m.demote = demote;
        }
        self.demote()
    }

    /// The group's demote count: the highest of its members' own.
    pub fn demote(&self) -> u8 {
        self.members.iter().map(|m| m.demote).max().unwrap_or(0)
    }

    /// The state of the group as a whole.
    pub fn state(&self) -> GroupState {
        if self.in_fault() {
            return GroupState::Fault;
        }
        let all = |s: State| {
            self.members
                .iter()
                .filter(|m| !m.left)
                .all(|m| m.state == s)
        };
        if all(State::Master) {
            GroupState::Master
        } else if all(State::Backup) {
            GroupState::Backup
        } else {
            GroupState::Mixed
        }
    }

    /// The member whose change last moved the group, and its reason.
    pub fn why(&self) -> Option<(usize, Reason)> {
        self.why
    }

    /// A member is down (INIT, not for good).
    fn in_fault(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.state == State::Init && !m.left)
    }

    /// `command` for every member.
    fn to_all(&self, command: GroupCommand) -> Vec<(usize, GroupCommand)> {
        (0..self.members.len()).map(|i| (i, command)).collect()
    }

    /// `command` for every member but `member`.
    fn to_others(&self, member: usize, command: GroupCommand) -> Vec<(usize, GroupCommand)> {
        (0..self.members.len())
            .filter(|&i| i != member)
            .map(|i| (i, command))
            .collect()
    }
}

/// A change the group itself caused: recorded, never propagated again.
fn is_group_reason(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::GroupTakeOver | Reason::GroupStepDown | Reason::GroupFault
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_down_holds_every_member_until_all_are_up() {
        let mut g = Group::new([State::Master, State::Master]);
        assert_eq!(g.state(), GroupState::Master);
        let hold = g.observe(1, State::Init, Reason::LinkDown);
        assert_eq!(hold, vec![(0, GroupCommand::Hold), (1, GroupCommand::Hold)]);
        assert_eq!(g.state(), GroupState::Fault);
        assert_eq!(g.why(), Some((1, Reason::LinkDown)));
        // The held member's step down moves nothing more.
        assert!(g.observe(0, State::Backup, Reason::GroupFault).is_empty());
        let release = g.observe(1, State::Backup, Reason::LinkUp);
        assert_eq!(
            release,
            vec![(0, GroupCommand::Release), (1, GroupCommand::Release)]
        );
        assert_eq!(g.state(), GroupState::Backup);
    }

    #[test]
    fn a_member_taking_over_pulls_the_others() {
        let mut g = Group::new([State::Backup; 3]);
        let cmds = g.observe(2, State::Master, Reason::MasterDown);
        assert_eq!(
            cmds,
            vec![(0, GroupCommand::TakeOver), (1, GroupCommand::TakeOver)]
        );
        assert_eq!(g.state(), GroupState::Mixed);
        assert!(g
            .observe(0, State::Master, Reason::GroupTakeOver)
            .is_empty());
        assert!(g
            .observe(1, State::Master, Reason::GroupTakeOver)
            .is_empty());
        assert_eq!(g.state(), GroupState::Master);
    }

    #[test]
    fn a_member_stepping_down_takes_the_others_with_it() {
        let mut g = Group::new([State::Master; 2]);
        let yielded = g.observe(0, State::Backup, Reason::BetterMaster);
        assert_eq!(yielded, vec![(1, GroupCommand::StepDown { leave: false })]);
        let mut g = Group::new([State::Master; 2]);
        let admin = g.observe(1, State::Backup, Reason::AdminBackup);
        assert_eq!(admin, vec![(0, GroupCommand::StepDown { leave: true })]);
    }

    #[test]
    fn shutdown_is_no_fault_and_demote_is_the_highest() {
        let mut g = Group::new([State::Backup; 2]);
        assert!(g.observe(0, State::Init, Reason::Shutdown).is_empty());
        assert_eq!(g.state(), GroupState::Backup);
        assert_eq!(g.set_demote(0, 3), 3);
        assert_eq!(g.set_demote(1, 1), 3);
        assert_eq!(g.set_demote(0, 0), 1);
    }

    #[test]
    fn start_makes_fresh_members_consistent() {
        let mut g = Group::new([State::Init, State::Backup]);
        assert_eq!(
            g.start(),
            vec![(0, GroupCommand::Hold), (1, GroupCommand::Hold)]
        );
        let mut g = Group::new([State::Backup, State::Master]);
        let release = vec![(0, GroupCommand::Release), (1, GroupCommand::Release)];
        let mut expected = release.clone();
        expected.push((0, GroupCommand::TakeOver));
        assert_eq!(g.start(), expected);
        assert_eq!(Group::new([State::Backup; 2]).start(), release);
    }
}
