using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>What goes wrong with one entry, classified by ErrnoMeaning: left out and named, a loss of the volume's, or the end of the copy.</summary>
internal sealed partial class CopyRun
{
    /// <summary>
    /// FAT-like volumes store names as UTF-16, so a name that is not UTF-8 has no faithful form there.
    /// Left out before it is tried: exfat-fuse accepts one holding an encoded surrogate, then dies
    /// listing its directory (as it does under cp -a), which takes the whole volume away.
    /// </summary>
    private bool NameHeld(DirectoryNode directory, string name)
    {
        if (!_volume.IsFatLike || NativeName.IsUtf8(name))
        {
            return true;
        }

        _report.Losses.Add(LossKind.Names, DirectoryNode.Join(directory.RelativePath, name), "not UTF-8, which a FAT-like volume cannot store");
        return false;
    }

    private byte TypeOf(int dirFd, string name)
    {
        if (_posix.LStatAt(dirFd, name, out var stat) < 0)
        {
            return DirectoryReader.DT_UNKNOWN;
        }

        return IsType(stat, FilePermissions.S_IFDIR) ? DirectoryReader.DT_DIR : DirectoryReader.DT_UNKNOWN;
    }

    private bool ExistsIn(int dirFd, string name)
    {
        int result = _posix.LStatAt(dirFd, name, out _);
        // Anything but "not there" counts as there: an existing home is never overwritten.
        return result >= 0 || PosixException.ErrnoOf(result) != Errno.ENOENT;
    }

    private void RemoveLeftover(int dirFd, string name, in Stat there, string path)
    {
        int removed = IsType(there, FilePermissions.S_IFDIR)
            ? TreeRemover.RemoveChild(_posix, dirFd, name)
            : _posix.UnlinkAt(dirFd, name, isDirectory: false);
        if (removed < 0 && PosixException.ErrnoOf(removed) != Errno.ENOENT)
        {
            throw new DestinationWriteException("remove an incomplete copy of", path, PosixException.ErrnoOf(removed));
        }
    }

    private void SourceProblem(string path, string operation, Errno errno)
    {
        if (errno == Errno.ENOENT)
        {
            Skipped(ProblemKind.ChangedDuringCopy, path, "vanished while being copied");
            return;
        }

        Skipped(ProblemKind.Unreadable, path, $"{operation}: {PosixException.Describe(errno)}; left out");
    }

    private void DestinationProblem(string path, string operation, Errno errno)
    {
        if (ErrnoMeaning.StopsTheCopy(errno))
        {
            throw new DestinationWriteException(operation, path, errno);
        }

        if (ErrnoMeaning.NameRefused(errno))
        {
            _report.Losses.Add(LossKind.Names, path, $"{operation}: {PosixException.Describe(errno)}");
            return;
        }

        Skipped(ProblemKind.NotWritten, path, $"{operation} in the workspace: {PosixException.Describe(errno)}; left out");
    }

    /// <summary>
    /// A symlink or FIFO the volume refused although the probe found it holds them: then it is the
    /// name; without a probe's answer, a refusal of the kind itself.
    /// </summary>
    private void EntryRefused(string path, string operation, Errno errno, LossKind kind)
    {
        if (ErrnoMeaning.VolumeRefuses(errno) && !ErrnoMeaning.NameRefused(errno))
        {
            _report.Losses.Add(kind, path, $"{operation}: {PosixException.Describe(errno)}");
            return;
        }

        DestinationProblem(path, operation, errno);
    }

    private void Skipped(ProblemKind kind, string path, string detail)
    {
        switch (kind)
        {
            case ProblemKind.Unreadable:
                Interlocked.Increment(ref _report.SkippedUnreadable);
                break;
            case ProblemKind.NotWritten:
                Interlocked.Increment(ref _report.NotWritten);
                break;
            default:
                Interlocked.Increment(ref _report.ChangedDuringCopy);
                break;
        }

        Named(kind, path, detail);
    }

    private void Named(ProblemKind kind, string path, string detail)
    {
        var problem = new CopyProblem(kind, path, detail);
        if (_report.AddProblem(problem))
        {
            _options.OnProblem?.Invoke(problem);
        }
    }
}
