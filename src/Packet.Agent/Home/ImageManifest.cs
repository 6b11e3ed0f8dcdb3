using System.Globalization;
using System.Text;
using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;

namespace Packet.Agent.Home;

/// <summary>
/// One entry of the image's home as it was seeded: enough to tell later whether the image changed
/// it, and whether the user did. Files up to <see cref="ImageManifest.HashLimit"/> carry a hash of
/// their content (XXH128); larger ones (model weights) are compared by size and modification time.
/// </summary>
public sealed record ManifestEntry(string Path, char Type, long Size, long MtimeSeconds, long MtimeNanoseconds, string? Hash)
{
    public const char File = 'f';
    public const char Directory = 'd';
    public const char Symlink = 'l';
    public const char Fifo = 'p';

    /// <summary>Whether two descriptions are the same content (the path aside).</summary>
    public bool SameAs(ManifestEntry other)
    {
        if (Type != other.Type)
        {
            return false;
        }

        return Type switch
        {
            File when Hash is not null && other.Hash is not null => Size == other.Size && Hash == other.Hash,
            File => Size == other.Size && MtimeSeconds == other.MtimeSeconds && MtimeNanoseconds == other.MtimeNanoseconds,
            Symlink => Hash == other.Hash,
            _ => true,
        };
    }
}

/// <summary>
/// The manifest of what a seed copied from the image's home, in <c>/workspace/.packet/image-manifest</c>:
/// a header naming the image, then one line per entry in a fixed order (depth first, names sorted
/// byte-wise), so an upgrade reads it as a stream beside a walk of the new image, in bounded memory.
/// Lines are <c>type TAB size TAB mtime TAB hash TAB path</c>, the path escaped (<c>\t \n \\ \xHH</c>).
/// </summary>
public static class ImageManifest
{
    public const long HashLimit = 4 * 1024 * 1024;
    private const string HeaderPrefix = "# packet-agent image manifest v1 ";

    public static string Header(string imageIdentity) => HeaderPrefix + imageIdentity;

    /// <summary>The image identity in a manifest's first line, or null when it is not a manifest.</summary>
    public static string? ReadIdentity(string firstLine) =>
        firstLine.StartsWith(HeaderPrefix, StringComparison.Ordinal) ? firstLine[HeaderPrefix.Length..] : null;

    public static string Format(ManifestEntry entry) => string.Create(
        CultureInfo.InvariantCulture,
        $"{entry.Type}\t{entry.Size}\t{entry.MtimeSeconds}.{entry.MtimeNanoseconds:D9}\t{entry.Hash ?? "-"}\t{Escape(entry.Path)}");

    public static ManifestEntry? Parse(string line)
    {
        var fields = line.Split('\t', 5);
        if (fields.Length != 5 || fields[0].Length != 1)
        {
            return null;
        }

        var mtime = fields[2].Split('.');
        return new ManifestEntry(
            Unescape(fields[4]),
            fields[0][0],
            long.Parse(fields[1], CultureInfo.InvariantCulture),
            long.Parse(mtime[0], CultureInfo.InvariantCulture),
            long.Parse(mtime[1], CultureInfo.InvariantCulture),
            fields[3] == "-" ? null : fields[3]);
    }

    /// <summary>Describes an entry from its stat (and content, read through <paramref name="dirFd"/>, never following a link).</summary>
    public static ManifestEntry Describe(IPosix posix, int dirFd, string name, string path, in Stat stat)
    {
        var type = (stat.st_mode & FilePermissions.S_IFMT) switch
        {
            FilePermissions.S_IFDIR => ManifestEntry.Directory,
            FilePermissions.S_IFLNK => ManifestEntry.Symlink,
            FilePermissions.S_IFIFO => ManifestEntry.Fifo,
            _ => ManifestEntry.File,
        };
        string? hash = type switch
        {
            ManifestEntry.File when stat.st_size <= HashLimit => HashFile(posix, dirFd, name),
            ManifestEntry.Symlink => posix.ReadLinkAt(dirFd, name, out string target) >= 0 ? ContentHash.Of(Encoding.UTF8.GetBytes(target)) : null,
            _ => null,
        };
        long size = type == ManifestEntry.File ? stat.st_size : 0;
        return new ManifestEntry(path, type, size, stat.st_mtime, stat.st_mtime_nsec, hash);
    }

    /// <summary>
    /// A cheap identity of an image's home when the image does not name its version: the names,
    /// types, sizes and times of its first two levels. A boot with an unchanged image pays a few
    /// dozen stat calls for it, never a walk of the whole home.
    /// </summary>
    public static string Fingerprint(IPosix posix, int homeFd)
    {
        var hash = ContentHash.Start();
        var reader = new DirectoryReader(posix, 16 * 1024);
        void Add(int dirFd, string prefix, int depth)
        {
            foreach (string name in SortedNames(reader, dirFd))
            {
                if (posix.LStatAt(dirFd, name, out var stat) < 0)
                {
                    continue;
                }

                hash.Append(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{prefix}{name}\0{(uint)stat.st_mode}\0{stat.st_size}\0{stat.st_mtime}.{stat.st_mtime_nsec}\n")));
                if (depth > 0 && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR)
                {
                    int child = posix.OpenAt(dirFd, name, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
                    if (child >= 0)
                    {
                        Add(child, prefix + name + "/", depth - 1);
                        posix.Close(child);
                    }
                }
            }
        }

        Add(homeFd, string.Empty, 1);
        return "fingerprint:" + ContentHash.Finish(hash)[..16];
    }

    /// <summary>A directory's names in the manifest's order (byte-wise, as the kernel stores them).</summary>
    public static List<string> SortedNames(DirectoryReader reader, int dirFd)
    {
        var names = new List<string>();
        reader.ReadAll(dirFd, entry => names.Add(entry.Name));
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Orders two manifest paths the way a depth-first walk with sorted names visits them.</summary>
    public static int ComparePaths(string a, string b)
    {
        int i = 0;
        while (true)
        {
            int endA = a.IndexOf('/', i);
            int endB = b.IndexOf('/', i);
            string partA = endA < 0 ? a[i..] : a[i..endA];
            string partB = endB < 0 ? b[i..] : b[i..endB];
            int order = string.CompareOrdinal(partA, partB);
            if (order != 0)
            {
                return order;
            }

            if (endA < 0 || endB < 0)
            {
                return (endA < 0 ? 0 : 1) - (endB < 0 ? 0 : 1); // a directory comes before what is in it
            }

            i = endA + 1;
        }
    }

    private static string? HashFile(IPosix posix, int dirFd, string name)
    {
        int fd = posix.OpenAt(dirFd, name, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC, 0);
        if (fd < 0)
        {
            return null;
        }

        try
        {
            var hash = ContentHash.Start();
            var buffer = new byte[64 * 1024];
            long offset = 0;
            long read;
            while ((read = posix.PRead(fd, buffer, offset)) > 0)
            {
                hash.Append(buffer.AsSpan(0, (int)read));
                offset += read;
            }

            return read < 0 ? null : ContentHash.Finish(hash);
        }
        finally
        {
            posix.Close(fd);
        }
    }

    private static string Escape(string path)
    {
        var text = new StringBuilder(path.Length);
        for (int i = 0; i < path.Length; i++)
        {
            char c = path[i];
            switch (c)
            {
                case '\\': text.Append(@"\\"); break;
                case '\t': text.Append(@"\t"); break;
                case '\n': text.Append(@"\n"); break;
                case '\0' when i + 1 < path.Length: text.Append(@"\0").Append(((int)path[++i]).ToString("x2", CultureInfo.InvariantCulture)); break;
                default: text.Append(c); break;
            }
        }

        return text.ToString();
    }

    private static string Unescape(string field)
    {
        var text = new StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] != '\\' || i + 1 >= field.Length)
            {
                text.Append(field[i]);
                continue;
            }

            char next = field[++i];
            switch (next)
            {
                case 't': text.Append('\t'); break;
                case 'n': text.Append('\n'); break;
                case '0': text.Append('\0').Append((char)Convert.ToInt32(field.Substring(i + 1, 2), 16)); i += 2; break;
                default: text.Append(next); break;
            }
        }

        return text.ToString();
    }
}
