using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 1: is there a volume at the workspace, and may the agent write what it keeps there? It
/// hands on the workspace, open: every later step reaches the volume through that descriptor.
/// Without one nothing can persist, so steps 2-4 are skipped, but the pod must still start: a
/// warning (with --strict, a failed boot). An agent that is not root (an image with USER 1000, a
/// pod with runAsUser) on a volume it cannot write is told whose the volume is and how to give it to the user.
/// </summary>
public sealed class GuardStep(IPosix posix) : IBootStep<BootOptions, DirectoryHandle?>
{
    private const int WriteAndSearch = 2 | 1; // W_OK | X_OK

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

        if (posix.EffectiveUserId != 0 && NotWritable(workspace) is { } refusal)
        {
            workspace.Dispose();
            return StepPlan.Settled<DirectoryHandle?>(StepResult.Problem(refusal), null);
        }

        return StepPlan.Settled<DirectoryHandle?>(StepResult.Ok($"workspace {path} is present"), workspace);
    }

    /// <summary>The guard only looks: every plan it makes is settled.</summary>
    public (StepResult Result, DirectoryHandle? Value) Apply(StepPlan<DirectoryHandle?> plan, BootSettings settings) => (plan.Preview, plan.Planned);

    /// <summary>
    /// What this user must be able to write: the workspace itself while it lacks the home, the state
    /// folder or bin, and each of those that exists. Null when all are writable.
    /// </summary>
    private string? NotWritable(DirectoryHandle workspace)
    {
        string[] kept = [WorkspaceLayout.Home, WorkspaceLayout.State, WorkspaceLayout.Bin];
        bool complete = kept.All(workspace.Exists);
        var needed = complete ? kept : [".", .. kept];
        foreach (string name in needed)
        {
            if (workspace.LStat(name, out var stat) < 0 || posix.AccessAt(workspace.Fd, name, WriteAndSearch) >= 0)
            {
                continue;
            }

            string path = name == "." ? workspace.Path : workspace.PathOf(name);
            uint uid = posix.EffectiveUserId;
            uint gid = posix.EffectiveGroupId;
            string mode = Convert.ToString((int)(stat.st_mode & FilePermissions.ALLPERMS), 8).PadLeft(4, '0');
            return $"{path} is not writable by the agent's user (uid {uid}, gid {gid}): it belongs to {stat.st_uid}:{stat.st_gid}, mode {mode}, "
                + "so the home can be neither seeded nor kept; skipping seed, marker and profile. Give the volume to the pod's user: "
                + $"set the pod's securityContext.fsGroup: {gid} (Kubernetes then makes the volume group-writable), or seed it from an init "
                + $"container that runs as root (container/k8s/pod-non-root.yaml), or run once: chown -R {uid}:{gid} {workspace.Path}";
        }

        return null;
    }
}
