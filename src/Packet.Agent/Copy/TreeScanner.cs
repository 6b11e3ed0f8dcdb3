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
        var seenLinks = new HashSet<(ulong, ulong)>();
        long entries = 0, bytes = 0, allocated = 0, extraLinks = 0;
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
                int existingChild = -1;
                if (frame.ExistingFd >= 0 && posix.LStatAt(frame.ExistingFd, entry.Name, out var there) >= 0)
                {
                    if ((there.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR || entry.Type is not (DirectoryReader.DT_DIR or DirectoryReader.DT_UNKNOWN))
                    {
                        continue; // kept as it is in the existing home
                    }

                    existingChild = posix.OpenAt(frame.ExistingFd, entry.Name, DirectoryFlags, 0);
                }

                if (posix.LStatAt(frame.SourceFd, entry.Name, out var stat) < 0)
                {
                    CloseIfOpen(existingChild);
                    continue; // unreadable: the copy reports it
                }

                var type = stat.st_mode & FilePermissions.S_IFMT;
                if (type == FilePermissions.S_IFDIR)
                {
                    int child = (excluded is { } x && stat.st_dev == x.Device && stat.st_ino == x.Inode) ? -1 : posix.OpenAt(frame.SourceFd, entry.Name, DirectoryFlags, 0);
                    if (child < 0)
                    {
                        CloseIfOpen(existingChild);
                        continue;
                    }

                    entries++;
                    allocated += stat.st_blocks * 512;
                    frames.Push(new Frame(child, existingChild, OwnsDescriptors: true, List(reader, child)));
                    continue;
                }

                CloseIfOpen(existingChild);
                if (CopyRules.Skipped(stat.st_mode))
                {
                    continue; // not copied
                }

                if (stat.st_nlink > 1 && !seenLinks.Add((stat.st_dev, stat.st_ino)))
                {
                    entries++; // another name for data already counted
                    extraLinks++;
                    continue;
                }

                entries++;
                allocated += stat.st_blocks * 512;
                if (type == FilePermissions.S_IFREG)
                {
                    bytes += stat.st_size;
                }
            }
        }
        finally
        {
            while (frames.TryPop(out var frame))
            {
                frame.Close(posix);
            }
        }

        return new TreeSize(entries, bytes, allocated, extraLinks);

        void CloseIfOpen(int fd)
        {
            if (fd >= 0)
            {
                posix.Close(fd);
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
