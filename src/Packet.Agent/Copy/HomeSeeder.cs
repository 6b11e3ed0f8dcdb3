using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Copy;

/// <summary>How a seed ended: the copy's report when the home is complete, or the problem.</summary>
public sealed record SeedOutcome(CopyReport? Report, string? Problem)
{
    public bool Complete => Problem is null;
}

/// <summary>What the seeder tells its caller while it works (the seed step turns it into log lines).</summary>
public interface ISeedObserver
{
    void Planned(SeedPlan plan);

    void Progress(CopyReport report, TreeSize total);

    void Problem(CopyProblem problem);
}

/// <summary>What a seed is about to do, known after the scan.</summary>
public sealed record SeedPlan(bool Merging, bool Resuming, TreeSize ToCopy, long FreeBytes);

/// <summary>
/// The crash-safe first-boot copy. The home is copied into <c>/workspace/.packet/staging/home</c>,
/// made durable (syncfs), then published with one rename to <c>/workspace/home</c>: a boot killed
/// at any instant leaves either no home or a complete one, and the marker comes after that.
/// A staging tree left by a killed boot is resumed (complete files kept, partial ones redone).
/// When <c>/workspace/home</c> already exists without a marker (made by hand, by an interrupted
/// legacy <c>cp -r</c>, or re-seed requested by deleting the marker), only what it lacks is copied
/// and moved in with renames that never replace anything: nothing the user has is overwritten.
/// </summary>
public sealed class HomeSeeder(IPosix posix, CopyOptions copyOptions, TimeSpan progressInterval)
{
    private const FilePermissions StateMode = FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH;
    private const FilePermissions PrivateMode = FilePermissions.S_IRWXU;

    /// <summary>What a seed would do, found without changing anything: the dry run's plan and the seed's first step.</summary>
    public SeedPlan Survey(DirectoryHandle workspace, DirectoryHandle source)
    {
        PosixException.Check(posix.FStat(workspace.Fd, out var workspaceStat), "stat", workspace.Path);
        using var existingHome = workspace.TryOpenDirectory(WorkspaceLayout.Home);
        using var state = workspace.TryOpenDirectory(WorkspaceLayout.State);
        using var staging = state?.TryOpenDirectory(WorkspaceLayout.Staging);
        bool resuming = staging?.Exists(WorkspaceLayout.Home) == true;
        var toCopy = new TreeScanner(posix).Scan(source.Fd, existingHome?.Fd ?? -1, (workspaceStat.st_dev, workspaceStat.st_ino));
        PosixException.Check(posix.FStatVfs(workspace.Fd, out var volume), "statvfs", workspace.Path);
        return new SeedPlan(existingHome is not null, resuming, toCopy, (long)(volume.f_bavail * volume.f_frsize));
    }

    /// <summary>Why a plan cannot be carried out (the home does not fit), or null.</summary>
    public static string? Obstacle(SeedPlan plan, string workspacePath) =>
        // What a resumed copy already staged is in use, so the check only applies to a fresh start.
        !plan.Resuming && plan.ToCopy.AllocatedBytes > plan.FreeBytes
            ? $"the home needs {Units.Bytes(plan.ToCopy.AllocatedBytes)} ({plan.ToCopy.AllocatedBytes} bytes) but {workspacePath} has {Units.Bytes(plan.FreeBytes)} ({plan.FreeBytes} bytes) free"
            : null;

    public SeedOutcome Seed(DirectoryHandle workspace, DirectoryHandle source, ISeedObserver observer)
    {
        var plan = Survey(workspace, source);
        observer.Planned(plan);
        if (Obstacle(plan, workspace.Path) is { } obstacle)
        {
            return new SeedOutcome(null, $"{obstacle}; nothing was copied and the home is not marked");
        }

        PosixException.Check(posix.FStat(workspace.Fd, out var workspaceStat), "stat", workspace.Path);
        using var state = workspace.CreateDirectory(WorkspaceLayout.State, StateMode);
        using var staging = state.CreateDirectory(WorkspaceLayout.Staging, PrivateMode);
        using var existingHome = workspace.TryOpenDirectory(WorkspaceLayout.Home);
        using var stagingHome = staging.CreateDirectory(WorkspaceLayout.Home, PrivateMode);
        var options = copyOptions with
        {
            ExcludedDirectory = (workspaceStat.st_dev, workspaceStat.st_ino),
            OnProblem = observer.Problem,
        };

        int existingFd = existingHome?.Fd ?? -1;
        var toCopy = plan.ToCopy;
        var report = new CopyReport(options.ProblemsToName);
        using (new ProgressTicker(progressInterval, () => observer.Progress(report, toCopy)))
        {
            new TreeCopier(posix, options).Copy(source.Fd, stagingHome.Fd, existingFd, report);
        }

        if (report.FatalError is { } fatal)
        {
            if (report.OutOfSpace)
            {
                // A half copy must not keep the user's volume full: give the space back.
                TreeRemover.RemoveChild(posix, staging.Fd, WorkspaceLayout.Home);
                return new SeedOutcome(report, $"the copy stopped: {fatal}; the partial copy was removed to free the space, and the home is not marked");
            }

            return new SeedOutcome(report, $"the copy stopped: {fatal}; the next boot resumes it from {staging.PathOf(WorkspaceLayout.Home)}");
        }

        // Durable before visible: a power cut after the rename must not expose a home with missing data.
        PosixException.Check(posix.SyncFs(workspace.Fd), "syncfs", workspace.Path);
        if (existingHome is null)
        {
            PosixException.Check(
                posix.RenameAt(staging.Fd, WorkspaceLayout.Home, workspace.Fd, WorkspaceLayout.Home, noReplace: true),
                "move the copied home into place at",
                workspace.PathOf(WorkspaceLayout.Home));
        }
        else
        {
            MoveMissingEntries(stagingHome.Fd, existingHome.Fd, existingHome.Path);
            PosixException.Check(TreeRemover.RemoveChild(posix, staging.Fd, WorkspaceLayout.Home), "remove the staging copy", staging.PathOf(WorkspaceLayout.Home));
        }

        PosixException.Check(posix.FSync(workspace.Fd), "fsync", workspace.Path);
        return new SeedOutcome(report, null);
    }

    /// <summary>
    /// Moves each staged entry into the existing home with renameat2(RENAME_NOREPLACE): an entry
    /// that appeared there meanwhile is kept, not replaced. Directories on both sides are merged.
    /// </summary>
    private void MoveMissingEntries(int stagedFd, int homeFd, string homePath)
    {
        var entries = new List<DirectoryEntry>();
        PosixException.Check(new DirectoryReader(posix).ReadAll(stagedFd, entries.Add), "list", "the staging copy");
        foreach (var entry in entries)
        {
            int moved = posix.RenameAt(stagedFd, entry.Name, homeFd, entry.Name, noReplace: true);
            if (moved >= 0)
            {
                continue;
            }

            var errno = PosixException.ErrnoOf(moved);
            if (errno != Errno.EEXIST)
            {
                throw new PosixException("move into place", Path.Join(homePath, entry.Name), errno);
            }

            if (entry.Type != DirectoryReader.DT_DIR || posix.LStatAt(homeFd, entry.Name, out var there) < 0
                || (there.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
            {
                continue; // the home has its own entry here: it stays
            }

            const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
            int stagedChild = PosixException.Check(posix.OpenAt(stagedFd, entry.Name, DirectoryFlags, 0), "open", entry.Name);
            int homeChild = posix.OpenAt(homeFd, entry.Name, DirectoryFlags, 0);
            try
            {
                if (homeChild >= 0)
                {
                    MoveMissingEntries(stagedChild, homeChild, Path.Join(homePath, entry.Name));
                }
            }
            finally
            {
                posix.Close(stagedChild);
                if (homeChild >= 0)
                {
                    posix.Close(homeChild);
                }
            }
        }
    }
}
