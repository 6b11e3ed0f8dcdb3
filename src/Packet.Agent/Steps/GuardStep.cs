using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 1: is there a volume at the workspace, and may the agent keep its state there? It hands on
/// the workspace, open: every later step reaches the volume through that descriptor. Without one
/// nothing can persist, so steps 2-4 are skipped, but the pod must still start: a warning (with
/// --strict, a failed boot). A root agent makes its part of the volume its own first
/// (<see cref="StateClaim"/>: <c>.packet</c> root's alone, the home's account's folder made), so
/// that no later step trusts anything another account could have put there. An agent that is not
/// root (an image with USER 1000, a pod with runAsUser) on a volume it cannot write is told whose
/// the volume is and how to give it to the user.
/// </summary>
public sealed class GuardStep(IPosix posix, TimeProvider clock) : IBootStep<BootOptions, DirectoryHandle?>
{
    public StepId Id => StepId.Guard;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<DirectoryHandle?> Decide(BootOptions input, BootSettings settings)
    {
        string path = input.Workspace;
        DirectoryHandle workspace;
        try
        {
            workspace = DirectoryHandle.Open(posix, path);
        }
        catch (PosixException e) when (e.Errno is Errno.ENOENT or Errno.ENOTDIR)
        {
            string what = e.Errno == Errno.ENOTDIR ? "exists but is not a directory" : "does not exist (no persistent volume is mounted there)";
            return StepPlan.Settled<DirectoryHandle?>(
                StepResult.Problem($"{path} {what}: the home will not persist across restarts; skipping seed, marker and profile. Mount a volume at {path} or point --workspace at one"),
                null);
        }

        if (posix.EffectiveUserId != 0)
        {
            if (NotWritable(workspace) is { } refusal)
            {
                workspace.Dispose();
                return StepPlan.Settled<DirectoryHandle?>(StepResult.Problem(refusal), null);
            }

            return StepPlan.Settled<DirectoryHandle?>(StepResult.Ok($"workspace {path} is present"), workspace);
        }

        try
        {
            var account = settings.Account.Account is { } known ? (known.Uid, known.Gid) : ((uint, uint)?)null;
            var claim = new StateClaim(posix, clock).Survey(workspace, account);
            return claim.Count == 0
                ? StepPlan.Settled<DirectoryHandle?>(StepResult.Ok($"workspace {path} is present"), workspace)
                : new ClaimPlan(workspace, claim, account);
        }
        catch (IOException e)
        {
            return StepPlan.Settled<DirectoryHandle?>(StepResult.Problem($"workspace {path} is present, but its state folder cannot be looked at: {e.Message}"), workspace);
        }
    }

    /// <summary>Root's part of the volume made its own, as the survey found; the workspace is handed on either way (a later step that needs the state refuses what is not root's).</summary>
    public (StepResult Result, DirectoryHandle? Value) Apply(StepPlan<DirectoryHandle?> plan, BootSettings settings)
    {
        if (plan is not ClaimPlan claim)
        {
            return (plan.Preview, plan.Planned);
        }

        try
        {
            var outcome = new StateClaim(posix, clock).Apply(claim.Workspace, claim.Actions, claim.Account);
            string done = $"workspace {claim.Workspace.Path} is present; {ClaimPlan.Summary(claim.Workspace, outcome.Done, done: true)}{VolumeNote(outcome.Trust)}";
            var result = StepResult.Ok(done);
            string why = outcome.VolumeLearned
                ? $"the volume {VolumeNote(outcome.Trust).TrimStart(';', ' ')}; what else to take back was looked at again knowing it"
                : $"{claim.Workspace.PathOf(WorkspaceLayout.State)} changed between the survey and the claim; what it holds was looked at again once no other account could change it";
            return (outcome.Replanned
                ? result with { Replanned = new Replan(why, [.. outcome.Done.SelectMany(a => ClaimPlan.ChangesOf(claim.Workspace, a))]) }
                : result, claim.Workspace);
        }
        catch (IOException e)
        {
            return (StepResult.Problem($"{claim.Workspace.PathOf(WorkspaceLayout.State)} could not be made root's alone: {e.Message}; what needs it is refused this boot"), claim.Workspace);
        }
    }

    /// <summary>Why this user cannot keep the home on the volume (<see cref="StateFolder.FirstUnwritable"/>), with whose it is and how to give it to the user; null when it can.</summary>
    private string? NotWritable(DirectoryHandle workspace)
    {
        if (StateFolder.FirstUnwritable(posix, workspace) is not var (name, stat))
        {
            return null;
        }

        string path = name == "." ? workspace.Path : workspace.PathOf(name);
        uint uid = posix.EffectiveUserId;
        uint gid = posix.EffectiveGroupId;
        string rootMakesIt = name == WorkspaceLayout.State
            ? $" ({workspace.PathOf(WorkspaceLayout.AccountState(uid))}, where this user's agent keeps its state, is made by a root boot for the home's account: the init container of container/k8s/pod-non-root.yaml, with --user {uid}:{gid} when the image's home is not that user's)"
            : string.Empty;
        return $"{path} is not writable by the agent's user (uid {uid}, gid {gid}): it belongs to {stat.st_uid}:{stat.st_gid}, mode {SafePath.Mode(stat)}{rootMakesIt}, "
            + "so the home can be neither seeded nor kept; skipping seed, marker and profile. Give the volume to the pod's user: "
            + $"set the pod's securityContext.fsGroup: {gid} (Kubernetes then makes the volume group-writable), or seed it from an init "
            + $"container that runs as root (container/k8s/pod-non-root.yaml), or run once: chown -R {uid}:{gid} {workspace.Path}";
    }

    /// <summary>What the volume turned out not to keep, said once: root's state there is as private as the mount makes it.</summary>
    private static string VolumeNote(VolumeTrust trust) =>
        (trust.VolumeOwner is { } owner ? $"; this volume gives root's files to uid {owner} (NFS root_squash, or a mount's uid=): root's state here is that uid's, which it trusts on this volume alone" : string.Empty)
        + (trust.KeepsModes ? string.Empty : "; this volume keeps no modes (FAT, exFAT): every entry shows the mount's, so root's state here is as private as the mount makes it; nothing is run from it");

    /// <summary>Root's part of the volume to make its own: what the survey found, each as a planned change.</summary>
    private sealed class ClaimPlan(DirectoryHandle open, IReadOnlyList<ClaimAction> actions, (uint Uid, uint Gid)? account)
        : StepPlan<DirectoryHandle?>(StepResult.Ok($"workspace {open.Path} is present; would {Summary(open, actions)}"), open, actions.SelectMany(a => ChangesOf(open, a)).ToArray())
    {
        public DirectoryHandle Workspace => Planned!;

        public IReadOnlyList<ClaimAction> Actions => actions;

        /// <summary>The home's account, whose folder the claim makes.</summary>
        public (uint Uid, uint Gid)? Account => account;

        public static string Summary(DirectoryHandle workspace, IReadOnlyList<ClaimAction> actions, bool done = false)
        {
            string state = workspace.PathOf(WorkspaceLayout.State);
            var said = new List<string>();
            foreach (var action in actions)
            {
                string path = action.Name == "." ? state : Path.Join(state, action.Name);
                said.Add(action.Kind switch
                {
                    ClaimKind.MoveStateAside => $"{(done ? "moved" : "move")} {state} aside ({action.Why})",
                    ClaimKind.MakeState => $"{(done ? "made" : "make")} {state} (root's)",
                    ClaimKind.TakeBack => $"{(done ? "took" : "take")} {state} back from another account ({action.Why}): root keeps its state only where no other account can write",
                    ClaimKind.Tighten => $"{(done ? "removed" : "remove")} others' write permission from {path} ({action.Why})",
                    ClaimKind.GiveToAccount => $"{(done ? "moved" : "move")} {path} into {Path.Join(state, WorkspaceLayout.AccountFolder(action.Uid))} ({action.Why}: that account's own)",
                    ClaimKind.MoveAside => $"{(done ? "moved" : "move")} {path} aside, unread ({action.Why})",
                    ClaimKind.MakeLock => $"{(done ? "made" : "make")} the lock {path}",
                    _ => $"{(done ? "made" : "make")} {path} for uid {action.Uid}, {action.Why}",
                });
            }

            return string.Join("; ", said);
        }

        public static IEnumerable<PlannedChange> ChangesOf(DirectoryHandle workspace, ClaimAction action)
        {
            string state = workspace.PathOf(WorkspaceLayout.State);
            string path = action.Name == "." ? state : Path.Join(state, action.Name);
            string aside = $"{path}{WorkspaceLayout.UntrustedSuffix}TIME";
            switch (action.Kind)
            {
                case ClaimKind.MoveStateAside or ClaimKind.MoveAside:
                    yield return new PlannedChange(ChangeKind.Move, path, aside, action.Why);
                    break;
                case ClaimKind.MakeState:
                    yield return PlannedChange.CreateDirectory(state, "root's, 0755");
                    break;
                case ClaimKind.TakeBack:
                    yield return new PlannedChange(ChangeKind.SetOwner, state, "root", action.Why);
                    yield return new PlannedChange(ChangeKind.SetMode, state, "0755");
                    break;
                case ClaimKind.Tighten:
                    yield return new PlannedChange(ChangeKind.SetMode, path, "without others' write permission", action.Why);
                    break;
                case ClaimKind.GiveToAccount:
                    string folder = Path.Join(state, WorkspaceLayout.AccountFolder(action.Uid));
                    yield return PlannedChange.CreateDirectory(folder, $"uid {action.Uid}'s, when missing");
                    yield return new PlannedChange(ChangeKind.Move, path, Path.Join(folder, action.Name), $"{action.Why}; moved aside to {aside} when that name is taken there");
                    break;
                case ClaimKind.MakeLock:
                    yield return PlannedChange.WriteFile(path, "empty, root's, 0644");
                    break;
                default:
                    yield return PlannedChange.CreateDirectory(path, $"uid {action.Uid}'s, 0755");
                    break;
            }
        }
    }
}
