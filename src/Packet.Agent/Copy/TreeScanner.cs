using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>What a copy will have to write: entries (of which <paramref name="ExtraLinks"/> are further names of a file already counted), file bytes, and blocks actually used (holes excluded).</summary>
public readonly record struct TreeSize(long Entries, long Bytes, long AllocatedBytes, long ExtraLinks = 0);

/// <summary>
/// Measures a tree before it is copied, for the free-space check and the progress percentage.
/// Walks like the copier (descriptors, no symlink followed) and leaves out what the copy will
/// leave out: entries an existing home already has, the workspace itself, and extra hard links.
/// </summary>
public sealed class TreeScanner(IPosix posix)
{
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

    public TreeSize Scan(int sourceRootFd, int existingRootFd, (ulong Device, ulong Inode)? excluded, CancellationToken stop = default)
    {
        var reader = new DirectoryReader(posix);
        var tally = new Tally();
        var frames = new Stack<Frame>();
        frames.Push(new Frame(sourceRootFd, existingRootFd, OwnsDescriptors: false, List(reader, sourceRootFd)));
        try
        {
            while (frames.TryPeek(out var frame))
            {
                stop.ThrowIfCancellationRequested();
                if (frame.Next >= frame.Entries.Count)
                {
                    frames.Pop().Close(posix);
                    continue;
                }

                var entry = frame.Entries[frame.Next++];
                if (!TryOpenExisting(frame, entry, out int existingChild))
                {
                    continue; // kept as it is in the existing home
                }

                if (posix.LStatAt(frame.SourceFd, entry.Name, out var stat) < 0)
                {
                    CloseIfOpen(existingChild);
                    continue; // unreadable: the copy reports it
                }

                if ((stat.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
                {
                    CloseIfOpen(existingChild);
                    tally.NonDirectory(stat);
                    continue;
                }

                int child = (excluded is { } x && stat.st_dev == x.Device && stat.st_ino == x.Inode) ? -1 : posix.OpenAt(frame.SourceFd, entry.Name, DirectoryFlags, 0);
                if (child < 0)
                {
                    CloseIfOpen(existingChild);
                    continue;
                }

                tally.Directory(stat);
                frames.Push(new Frame(child, existingChild, OwnsDescriptors: true, List(reader, child)));
            }
        }
        finally
        {
            while (frames.TryPop(out var frame))
            {
                frame.Close(posix);
            }
        }

        return tally.Total;
    }

    private void CloseIfOpen(int fd)
    {
        if (fd >= 0)
        {
            posix.Close(fd);
        }
    }

    /// <summary>
    /// When scanning against an existing home: its directory of that name, open (-1: it has none);
    /// false when it has something else there, or a directory where the source has none, which stays.
    /// </summary>
    private bool TryOpenExisting(Frame frame, DirectoryEntry entry, out int existingChild)
    {
        existingChild = -1;
        if (frame.ExistingFd < 0 || posix.LStatAt(frame.ExistingFd, entry.Name, out var there) < 0)
        {
            return true;
        }

        if ((there.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR || entry.Type is not (DirectoryReader.DT_DIR or DirectoryReader.DT_UNKNOWN))
        {
            return false;
        }

        existingChild = posix.OpenAt(frame.ExistingFd, entry.Name, DirectoryFlags, 0);
        return true;
    }

    /// <summary>What a copy will make, counted as the scan goes: entries, bytes, blocks, and names of data already counted.</summary>
    private sealed class Tally
    {
        private readonly HashSet<(ulong, ulong)> _seenLinks = [];
        private long _entries;
        private long _bytes;
        private long _allocated;
        private long _extraLinks;

        public TreeSize Total => new(_entries, _bytes, _allocated, _extraLinks);

        public void Directory(in Stat stat)
        {
            _entries++;
            _allocated += stat.st_blocks * 512;
        }

        public void NonDirectory(in Stat stat)
        {
            if (CopyRules.Skipped(stat.st_mode))
            {
                return; // not copied
            }

            _entries++;
            if (stat.st_nlink > 1 && !_seenLinks.Add((stat.st_dev, stat.st_ino)))
            {
                _extraLinks++; // another name for data already counted
                return;
            }

            _allocated += stat.st_blocks * 512;
            if ((stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG)
            {
                _bytes += stat.st_size;
            }
        }
    }

    private static List<DirectoryEntry> List(DirectoryReader reader, int fd)
    {
        var entries = new List<DirectoryEntry>();
        reader.ReadAll(fd, entries.Add);
        return entries;
    }

    private sealed record Frame(int SourceFd, int ExistingFd, bool OwnsDescriptors, List<DirectoryEntry> Entries)
    {
        public int Next { get; set; }

        public void Close(IPosix posix)
        {
            if (!OwnsDescriptors)
            {
                return;
            }

            posix.Close(SourceFd);
            if (ExistingFd >= 0)
            {
                posix.Close(ExistingFd);
            }
        }
    }
}
