using System.IO.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 1: is there a volume at the workspace, and may the agent write what it keeps there? Without
/// one nothing can persist, so steps 2-4 are skipped, but the pod must still start: a warning (with
/// --strict, a failed boot). An agent that is not root (an image with USER 1000, a pod with
/// runAsUser) on a volume it cannot write is told whose the volume is and how to give it to the user.
/// </summary>
public sealed class GuardStep(IFileSystem fileSystem, IPosix posix) : IBootStep
{
    private const int WriteAndSearch = 2 | 1; // W_OK | X_OK
    private const int AtCurrentDirectory = -100;

    public string Name => "guard";

    public int Number => 1;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepResult Run(BootContext context)
    {
        string workspace = context.Options.Workspace;
        if (!fileSystem.Directory.Exists(workspace))
        {
            string what = fileSystem.File.Exists(workspace) ? "exists but is not a directory" : "does not exist (no persistent volume is mounted there)";
            return StepResult.Problem(
                $"{workspace} {what}: the home will not persist across restarts; skipping seed, marker and profile. Mount a volume at {workspace} or point --workspace at one");
        }

        if (posix.EffectiveUserId != 0 && NotWritable(workspace) is { } refusal)
        {
            return StepResult.Problem(refusal);
        }

        context.PersistenceAvailable = true;
        return StepResult.Ok($"workspace {workspace} is present");
    }

    /// <summary>
    /// What this user must be able to write: the workspace itself while it lacks the home, the state
    /// folder or bin, and each of those that exists. Null when all are writable.
    /// </summary>
    private string? NotWritable(string workspace)
    {
        string[] kept = [WorkspaceLayout.Home, WorkspaceLayout.State, WorkspaceLayout.Bin];
        bool complete = kept.All(name => posix.LStatAt(AtCurrentDirectory, Path.Join(workspace, name), out _) >= 0);
        var needed = complete ? kept.Select(name => Path.Join(workspace, name)) : [workspace, .. kept.Select(name => Path.Join(workspace, name))];
        foreach (string path in needed)
        {
            if (posix.LStatAt(AtCurrentDirectory, path, out var stat) < 0 || posix.AccessAt(AtCurrentDirectory, path, WriteAndSearch) >= 0)
            {
                continue;
            }

            uint uid = posix.EffectiveUserId;
            uint gid = posix.EffectiveGroupId;
            string mode = Convert.ToString((int)(stat.st_mode & FilePermissions.ALLPERMS), 8).PadLeft(4, '0');
            return $"{path} is not writable by the agent's user (uid {uid}, gid {gid}): it belongs to {stat.st_uid}:{stat.st_gid}, mode {mode}, "
                + "so the home can be neither seeded nor kept; skipping seed, marker and profile. Give the volume to the pod's user: "
                + $"set the pod's securityContext.fsGroup: {gid} (Kubernetes then makes the volume group-writable), or seed it from an init "
                + $"container that runs as root (container/k8s/pod-non-root.yaml), or run once: chown -R {uid}:{gid} {workspace}";
        }

        return null;
    }
}
