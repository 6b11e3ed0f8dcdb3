using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// Copies the contents of one directory into another with the fidelity of <c>cp -a SRC/. DST/</c>:
/// data, mode, owner (as root), nanosecond times, symlinks as symlinks, hard links as hard links,
/// extended attributes, holes; FIFOs recreated; sockets and device nodes skipped and counted. An
/// entry that cannot be read is left out and named; the copy goes on.
/// </summary>
/// <remarks>
/// <para>The tree is walked through directory descriptors (openat and friends, O_NOFOLLOW), never
/// through path strings, so depth beyond PATH_MAX and hostile symlinks are non-issues and memory
/// stays bounded by depth, not by the number of entries.</para>
/// <para>One walker thread lists directories and creates them; workers copy everything else in
/// parallel. A directory receives its final mode and times after its last child is written.</para>
/// <para>Resumable: an entry already in the destination is kept when it is complete (a regular
/// file with the source's size and modification time, which are set last), otherwise replaced.
/// With an <c>existing</c> tree (a home that is already there), entries present in it are kept,
/// not copied: only what is missing lands in the destination, for the caller to move over.</para>
/// </remarks>
public sealed class TreeCopier(IPosix posix, CopyOptions options)
{
    // Read once per copier, never set: setting the umask is process-wide and would race with anything
    // else creating files. The agent never changes its own, so one read serves every copy.
    private readonly Lazy<FilePermissions> _creationMask = new(() => posix.ReadFileCreationMask() ?? FilePermissions.ALLPERMS);

    // One probe per destination volume, however many copies this copier makes (an upgrade makes one per entry).
    private readonly ConcurrentDictionary<ulong, VolumeTraits> _volumes = new();

    /// <summary>
    /// Copies the contents of <paramref name="sourceDirFd"/> into <paramref name="destinationDirFd"/>,
    /// skipping entries present in <paramref name="existingDirFd"/> (-1: none). The destination
    /// root gets the source root's metadata unless an existing tree is given. Counts land in
    /// <paramref name="report"/> as the copy runs, so a caller can show progress.
    /// </summary>
    public void Copy(int sourceDirFd, int destinationDirFd, int existingDirFd, CopyReport report)
    {
        long started = options.Clock.GetTimestamp();
        var volume = Probe(destinationDirFd);
        var runOptions = volume.IsFatLike ? options with { Workers = 0 } : options;
        new CopyRun(posix, runOptions, report, destinationDirFd, _creationMask.Value, volume).Run(sourceDirFd, existingDirFd);
        report.Duration = options.Clock.GetElapsedTime(started);
    }

    /// <summary>Copies one non-directory entry of <paramref name="sourceDirFd"/> into <paramref name="destinationDirFd"/>, with the same fidelity.</summary>
    public void CopyEntry(int sourceDirFd, string name, int destinationDirFd, CopyReport report) =>
        new CopyRun(posix, options with { Workers = 0 }, report, destinationDirFd, _creationMask.Value, Probe(destinationDirFd)).RunOne(sourceDirFd, name);

    /// <summary>What the volume of <paramref name="destinationDirFd"/> holds, probed there once per volume and copier.</summary>
    public VolumeTraits Probe(int destinationDirFd)
    {
        PosixException.Check(posix.FStat(destinationDirFd, out var destination), "stat", "the destination");
        return _volumes.GetOrAdd(destination.st_dev, _ => VolumeProbe.Probe(posix, destinationDirFd, options.PreserveOwnership));
    }
}
