using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Operations;

/// <summary>How a reset ended: where the old home went, or why nothing was done.</summary>
public sealed record ResetOutcome(bool Done, string Message, string? MovedTo = null);

/// <summary>
/// <c>packet-agent reset-home</c>: the safe way to ask for a fresh seed. The persisted home is
/// moved (never deleted) to <c>/workspace/home.bak-&lt;UTC time&gt;</c>, under the workspace lock,
/// so no agent is seeding meanwhile; the caller then seeds now, or leaves it to the next boot.
/// </summary>
public sealed class HomeReset(IPosix posix, TimeProvider clock)
{

    public ResetOutcome MoveAside(string workspacePath, string sourceHome, bool dryRun)
    {
        using var workspace = DirectoryHandle.Open(posix, workspacePath);
        string backup = BackupName(workspace);
        bool hasHome = workspace.Exists(WorkspaceLayout.Home);
        if (dryRun)
        {
            using var source = DirectoryHandle.Open(posix, sourceHome);
            PosixException.Check(posix.FStat(workspace.Fd, out var self), "stat", workspace.Path);
            var size = new TreeScanner(posix).Scan(source.Fd, -1, (self.st_dev, self.st_ino));
            string move = hasHome ? $"would move {workspace.PathOf(WorkspaceLayout.Home)} to {workspace.PathOf(backup)}, then " : "no home to move; would ";
            return new ResetOutcome(true, $"{move}seed {Units.Entries(size.Entries)} ({Units.Bytes(size.Bytes)}) from {sourceHome}");
        }

        if (!hasHome)
        {
            return new ResetOutcome(true, $"{workspace.PathOf(WorkspaceLayout.Home)} does not exist; nothing to move");
        }

        using var state = StateFolder.CreateShared(posix, workspace);
        string? holder = null;
        using var held = WorkspaceLock.Acquire(posix, state, clock, TimeSpan.Zero, TimeSpan.FromDays(1), (who, _) => holder = who, CancellationToken.None);
        if (held is null)
        {
            return new ResetOutcome(false, $"another agent holds {state.PathOf(WorkspaceLayout.Lock)} ({holder}): it may be seeding this home; try again once it has finished");
        }

        PosixException.Check(NoReplaceRename.Move(posix, workspace.Fd, WorkspaceLayout.Home, workspace.Fd, backup), "move aside", workspace.PathOf(WorkspaceLayout.Home));
        posix.FSync(workspace.Fd);
        return new ResetOutcome(true, $"moved {workspace.PathOf(WorkspaceLayout.Home)} to {workspace.PathOf(backup)} (nothing was deleted)", workspace.PathOf(backup));
    }

    private string BackupName(DirectoryHandle workspace)
    {
        string name = WorkspaceLayout.HomeBackupPrefix + clock.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        for (int n = 2; workspace.Exists(name); n++)
        {
            name = $"{WorkspaceLayout.HomeBackupPrefix}{clock.GetUtcNow():yyyyMMdd'T'HHmmss'Z'}-{n}";
        }

        return name;
    }
}
