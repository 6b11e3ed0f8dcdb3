using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Home;

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

/// <summary>What a seed is about to do, known after the scan. <paramref name="FreeInodes"/> is null on volumes without an inode limit (btrfs, FAT).</summary>
public sealed record SeedPlan(bool Merging, bool Resuming, TreeSize ToCopy, long FreeBytes, long? FreeInodes, bool InPlace = false);

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
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

    /// <summary>What a seed would do, found without changing anything: the dry run's plan and the seed's first step.</summary>
    public SeedPlan Survey(DirectoryHandle workspace, DirectoryHandle source)
    {
        PosixException.Check(posix.FStat(workspace.Fd, out var workspaceStat), "stat", workspace.Path);
        using var existingHome = workspace.TryOpenDirectory(WorkspaceLayout.Home);
        using var state = StateFolder.TryOpenOwn(posix, workspace);
        using var staging = state?.TryOpenDirectory(WorkspaceLayout.Staging);
        bool inPlace = existingHome is not null && staging?.Exists(WorkspaceLayout.InPlaceNote) == true;
        bool resuming = inPlace || staging?.Exists(WorkspaceLayout.Home) == true;
        // An unfinished copy in place is the agent's own: all of it is still to copy (complete files are then kept).
        var toCopy = new TreeScanner(posix).Scan(source.Fd, inPlace ? -1 : existingHome?.Fd ?? -1, (workspaceStat.st_dev, workspaceStat.st_ino), copyOptions.Stop);
        PosixException.Check(posix.FStatVfs(workspace.Fd, out var volume), "statvfs", workspace.Path);
        long? freeInodes = volume.f_files > 0 ? (long)volume.f_favail : null;
        return new SeedPlan(existingHome is not null && !inPlace, resuming, toCopy, (long)(volume.f_bavail * volume.f_frsize), freeInodes, inPlace);
    }

    /// <summary>Why a plan cannot be carried out (the home does not fit: blocks, or inodes), or null.</summary>
    public static string? Obstacle(SeedPlan plan, string workspacePath)
    {
        // What a resumed copy already staged is in use, so the check only applies to a fresh start.
        if (plan.Resuming)
        {
            return null;
        }

        if (plan.ToCopy.AllocatedBytes > plan.FreeBytes)
        {
            return $"the home needs {Units.Bytes(plan.ToCopy.AllocatedBytes)} ({plan.ToCopy.AllocatedBytes} bytes) but {workspacePath} has {Units.Bytes(plan.FreeBytes)} ({plan.FreeBytes} bytes) free";
        }

        // Every entry but a hard link's second name takes an inode; the staging folders take two more.
        long inodes = plan.ToCopy.Entries - plan.ToCopy.ExtraLinks + 2;
        return plan.FreeInodes is { } free && inodes > free
            ? $"the home needs {Units.Count(inodes)} inodes but {workspacePath} has {Units.Count(free)} free (its blocks would suffice: {Units.Bytes(plan.FreeBytes)} free); make the volume with more inodes, or free some"
            : null;
    }

    /// <summary>Seeds as <paramref name="plan"/> found (null: survey now, as when the plan may be stale).</summary>
    public SeedOutcome Seed(DirectoryHandle workspace, DirectoryHandle source, SeedPlan? plan, ISeedObserver observer)
    {
        plan ??= Survey(workspace, source);
        observer.Planned(plan);
        if (Obstacle(plan, workspace.Path) is { } obstacle)
        {
            return new SeedOutcome(null, $"{obstacle}; nothing was copied and the home is not marked");
        }

        PosixException.Check(posix.FStat(workspace.Fd, out var workspaceStat), "stat", workspace.Path);
        using var state = StateFolder.CreateOwn(posix, workspace);
        using var staging = state.CreateDirectory(WorkspaceLayout.Staging, FileModes.PrivateDirectory);
        var options = copyOptions with
        {
            ExcludedDirectory = (workspaceStat.st_dev, workspaceStat.st_ino),
            OnProblem = observer.Problem,
        };
        var copier = new TreeCopier(posix, options);
        var report = new CopyReport(options.ProblemsToName);
        if (copier.Probe(staging.Fd).DirectoryRenames is not null && (plan.InPlace || !plan.Merging))
        {
            return SeedInPlace(workspace, staging, source, copier, report, plan.ToCopy, observer);
        }

        using var existingHome = workspace.TryOpenDirectory(WorkspaceLayout.Home);
        using var stagingHome = staging.CreateDirectory(WorkspaceLayout.Home, FileModes.PrivateDirectory);
        if (!Copy(copier, source, stagingHome, existingHome?.Fd ?? -1, report, plan.ToCopy, observer))
        {
            return Stopped(report, staging, WorkspaceLayout.Home, $"the next boot resumes it from {staging.PathOf(WorkspaceLayout.Home)}");
        }

        // Durable before visible: a power cut after the rename must not expose a home with missing data.
        Flush(workspace, stagingHome, report);
        if (existingHome is null)
        {
            PosixException.Check(
                NoReplaceRename.Move(posix, staging.Fd, WorkspaceLayout.Home, workspace.Fd, WorkspaceLayout.Home),
                "move the copied home into place at",
                workspace.PathOf(WorkspaceLayout.Home));
        }
        else
        {
            MoveMissingEntries(stagingHome.Fd, existingHome.Fd, existingHome.Path, directoriesMove: report.Volume.DirectoryRenames is null);
            PosixException.Check(TreeRemover.RemoveChild(posix, staging.Fd, WorkspaceLayout.Home), "remove the staging copy", staging.PathOf(WorkspaceLayout.Home));
        }

        return Finished(workspace, state, report);
    }

    /// <summary>
    /// Where a directory moved to another directory arrives empty (fusefat), the home cannot be
    /// staged and moved: it is copied where it will live, with a note in staging/ saying it is the
    /// agent's own unfinished copy. It stays unmarked until complete; a killed boot finds the note
    /// and resumes it like a staged copy (complete files kept, partial ones redone).
    /// </summary>
    private SeedOutcome SeedInPlace(DirectoryHandle workspace, DirectoryHandle staging, DirectoryHandle source, TreeCopier copier, CopyReport report, TreeSize toCopy, ISeedObserver observer)
    {
        if (!staging.Exists(WorkspaceLayout.InPlaceNote))
        {
            staging.ReplaceFile(WorkspaceLayout.InPlaceNote, [], posix.EffectiveUserId, posix.EffectiveGroupId, FileModes.PrivateDirectory);
        }

        using var home = workspace.CreateDirectory(WorkspaceLayout.Home, FileModes.PrivateDirectory);
        if (!Copy(copier, source, home, -1, report, toCopy, observer))
        {
            if (report.OutOfSpace)
            {
                TreeRemover.RemoveChild(posix, workspace.Fd, WorkspaceLayout.Home);
                posix.UnlinkAt(staging.Fd, WorkspaceLayout.InPlaceNote, isDirectory: false);
            }

            return Stopped(report, staging, null, $"the next boot resumes it in {home.Path}");
        }

        Flush(workspace, home, report);
        PosixException.Check(posix.UnlinkAt(staging.Fd, WorkspaceLayout.InPlaceNote, isDirectory: false), "remove", staging.PathOf(WorkspaceLayout.InPlaceNote));
        using var state = StateFolder.CreateOwn(posix, workspace);
        return Finished(workspace, state, report);
    }

    private bool Copy(TreeCopier copier, DirectoryHandle source, DirectoryHandle destination, int existingFd, CopyReport report, TreeSize toCopy, ISeedObserver observer)
    {
        using (new ProgressTicker(progressInterval, () => observer.Progress(report, toCopy)))
        {
            copier.Copy(source.Fd, destination.Fd, existingFd, report);
        }

        return report.FatalError is null;
    }

    private SeedOutcome Stopped(CopyReport report, DirectoryHandle staging, string? stagedCopy, string resumes)
    {
        if (report.Stopped)
        {
            return new SeedOutcome(report, $"the copy was stopped before it finished; {resumes}");
        }

        if (!report.OutOfSpace)
        {
            return new SeedOutcome(report, $"the copy stopped: {report.FatalError}; {resumes}");
        }

        // A half copy must not keep the user's volume full: give the space back.
        if (stagedCopy is not null)
        {
            TreeRemover.RemoveChild(posix, staging.Fd, stagedCopy);
        }

        return new SeedOutcome(report, $"the copy stopped: {report.FatalError}; the partial copy was removed to free the space, and the home is not marked");
    }

    /// <summary>
    /// Makes the copy durable before anything marks it complete. One syncfs writes back and waits for
    /// every dirty page and inode of the volume, so what the copy wrote (its data already on its way:
    /// write-behind) is on disk when it returns. On FUSE syncfs does not reach the daemon: there the
    /// copy fsync'ed each file and directory as it finished it, and the top directory is fsync'ed here.
    /// </summary>
    private void Flush(DirectoryHandle workspace, DirectoryHandle copy, CopyReport report)
    {
        long flushing = copyOptions.Clock.GetTimestamp();
        if (!report.Volume.FlushedBySyncFs)
        {
            int synced = posix.FSync(copy.Fd);
            if (synced < 0 && !ErrnoMeaning.VolumeRefuses(PosixException.ErrnoOf(synced)))
            {
                PosixException.Check(synced, "fsync", copy.Path);
            }
        }

        PosixException.Check(posix.SyncFs(workspace.Fd), "syncfs", workspace.Path);
        report.FlushDuration = copyOptions.Clock.GetElapsedTime(flushing);
    }

    private SeedOutcome Finished(DirectoryHandle workspace, DirectoryHandle state, CopyReport report)
    {
        // staging/ exists only while a seed is unfinished; another agent's would not be empty.
        posix.UnlinkAt(state.Fd, WorkspaceLayout.Staging, isDirectory: true);
        PosixException.Check(posix.FSync(workspace.Fd), "fsync", workspace.Path);
        return new SeedOutcome(report, null);
    }

    /// <summary>
    /// Moves each staged entry into the home without replacing anything: an entry that appeared
    /// there meanwhile is kept. Directories on both sides are merged. Where the volume cannot move a
    /// directory whole (<paramref name="directoriesMove"/> false), a missing one is made in the home
    /// and filled entry by entry, then given the staged directory's owner, mode and times.
    /// </summary>
    private void MoveMissingEntries(int stagedFd, int homeFd, string homePath, bool directoriesMove)
    {
        var entries = new List<DirectoryEntry>();
        PosixException.Check(new DirectoryReader(posix).ReadAll(stagedFd, entries.Add), "list", "the staging copy");
        foreach (var entry in entries)
        {
            bool isDirectory = entry.Type == DirectoryReader.DT_DIR
                || (entry.Type == DirectoryReader.DT_UNKNOWN && posix.LStatAt(stagedFd, entry.Name, out var staged) >= 0 && (staged.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR);
            bool made = isDirectory && !directoriesMove && MakeDirectory(homeFd, entry.Name, homePath);

            int moved = isDirectory && !directoriesMove
                ? -(int)Errno.EEXIST
                : NoReplaceRename.Move(posix, stagedFd, entry.Name, homeFd, entry.Name);
            if (moved >= 0)
            {
                continue;
            }

            var errno = PosixException.ErrnoOf(moved);
            if (errno != Errno.EEXIST)
            {
                throw new PosixException("move into place", Path.Join(homePath, entry.Name), errno);
            }

            if (!isDirectory || posix.LStatAt(homeFd, entry.Name, out var there) < 0
                || (there.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
            {
                continue; // the home has its own entry here: it stays
            }

            int stagedChild = PosixException.Check(posix.OpenAt(stagedFd, entry.Name, DirectoryFlags, 0), "open", entry.Name);
            int homeChild = posix.OpenAt(homeFd, entry.Name, DirectoryFlags, 0);
            try
            {
                if (homeChild >= 0)
                {
                    MoveMissingEntries(stagedChild, homeChild, Path.Join(homePath, entry.Name), directoriesMove);
                    if (made)
                    {
                        CopyDirectoryMetadata(stagedChild, homeChild);
                    }
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

    /// <summary>A directory made in the home to be filled entry by entry; false when the home has one already.</summary>
    private bool MakeDirectory(int homeFd, string name, string homePath)
    {
        int created = posix.MkdirAt(homeFd, name, FileModes.PrivateDirectory);
        if (created < 0 && PosixException.ErrnoOf(created) != Errno.EEXIST)
        {
            throw new PosixException("create directory", Path.Join(homePath, name), PosixException.ErrnoOf(created));
        }

        return created >= 0;
    }

    /// <summary>
    /// A directory made in place of a staged one takes the staged one's owner, mode and times, set
    /// after its entries arrived. What the volume refuses here it refused for the staged copy too,
    /// where the copy counted it, so a refusal is not counted twice.
    /// </summary>
    private void CopyDirectoryMetadata(int stagedFd, int madeFd)
    {
        if (posix.FStat(stagedFd, out var staged) < 0)
        {
            return;
        }

        if (staged.st_uid != posix.EffectiveUserId || staged.st_gid != posix.EffectiveGroupId)
        {
            posix.FChown(madeFd, staged.st_uid, staged.st_gid);
        }

        posix.FChmod(madeFd, staged.st_mode & FilePermissions.ALLPERMS);
        posix.FUtimens(madeFd, staged);
    }
}
