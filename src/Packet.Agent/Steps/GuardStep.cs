using System.IO.Abstractions;
using Packet.Agent.Boot;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 1: is there a volume at the workspace? Without one nothing can persist, so steps 2-4 are
/// skipped, but the pod must still start: a warning (with --strict, a failed boot).
/// </summary>
public sealed class GuardStep(IFileSystem fileSystem) : IBootStep
{
    public string Name => "guard";

    public int Number => 1;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepResult Run(BootContext context)
    {
        string workspace = context.Options.Workspace;
        if (fileSystem.Directory.Exists(workspace))
        {
            context.PersistenceAvailable = true;
            return StepResult.Ok($"workspace {workspace} is present");
        }

        string what = fileSystem.File.Exists(workspace) ? "exists but is not a directory" : "does not exist (no persistent volume is mounted there)";
        return StepResult.Problem(
            $"{workspace} {what}: the home will not persist across restarts; skipping seed, marker and profile. Mount a volume at {workspace} or point --workspace at one");
    }
}
