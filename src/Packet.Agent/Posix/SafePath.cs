using System.Globalization;
using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>
/// The accounts an agent trusts with what it runs, reads or keeps: root always, and the agent's own
/// user (and its own group's write permission) when it is not root: a pod's fsGroup makes the
/// volume writable by the pod user's group at every mount. Root trusts no group: anything another
/// account could have changed is not trusted.
/// </summary>
public readonly record struct TrustedOwners(uint Self, uint SelfGroup)
{
    public static TrustedOwners Of(IPosix posix) => new(posix.EffectiveUserId, posix.EffectiveGroupId);

    public bool Contains(uint uid) => uid == 0 || uid == Self;

    /// <summary>Whether members of <paramref name="gid"/> may write what is trusted: only a non-root agent's own group.</summary>
    public bool TrustsGroup(uint gid) => Self != 0 && gid == SelfGroup;

    /// <summary>Who they are, for messages: "root", or "root or uid 1000".</summary>
    public override string ToString() => Self == 0 ? "root" : $"root or uid {Self.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>
/// The one check of whether a path may be trusted, as OpenSSH's <c>safe_path</c> (auth.c) and
/// systemd's <c>chase()</c> with <c>CHASE_SAFE</c> do it: every directory from <c>/</c> down to the
/// entry, and the entry itself, belongs to a trusted owner and is writable by no one else, so no
/// other account can replace anything the path names between this check and its use. Symlinks are
/// followed only where they sit in such a directory (their owner cannot change a link, only the
/// directory's can). A sticky directory writable by all (<c>/tmp</c>) is passed only toward an
/// entry a trusted owner has: there no one else may rename or remove it. A group-writable
/// directory is refused even when the group holds only root: the check reads modes, not groups.
/// </summary>
public static class SafePath
{
    private const int MaxLinks = 40;
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

    /// <summary>Null when <paramref name="path"/> (absolute) may be trusted; else which entry breaks the chain and why, in an operator's words.</summary>
    public static string? Refusal(IPosix posix, string path, TrustedOwners owners) => Refusal(posix, path, owners, toCreateIn: false);

    /// <summary>
    /// Null when a trusted entry may be made in the directory <paramref name="path"/>: as
    /// <see cref="Refusal(IPosix, string, TrustedOwners)"/>, but a sticky directory others may write
    /// (a tmpfs at /run, /tmp) will do, since what the agent makes there no one else can replace.
    /// </summary>
    public static string? RefusalToCreateIn(IPosix posix, string path, TrustedOwners owners) => Refusal(posix, path, owners, toCreateIn: true);

    private static string? Refusal(IPosix posix, string path, TrustedOwners owners, bool toCreateIn)
    {
        if (!path.StartsWith('/'))
        {
            return $"{NativeName.Display(path)} is not an absolute path";
        }

        using var walk = new Walk(posix, owners, toCreateIn);
        try
        {
            return walk.Start() ?? walk.Resolve(path);
        }
        catch (PosixException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// The first entry under <paramref name="path"/> (itself checked with <see cref="Refusal(IPosix, string, TrustedOwners)"/>)
    /// that another account owns or may write, and why; null when the whole tree is trusted. What a
    /// program loads from its own tree (a venv's site-packages and .pth files) runs with it: for
    /// root, every file in that tree counts.
    /// </summary>
    public static string? RefusalBelow(IPosix posix, string path, TrustedOwners owners)
    {
        if (Refusal(posix, path, owners) is { } refusal)
        {
            return refusal;
        }

        // Every folder on the way, and every link, is trusted now, so no other account can change where the
        // path leads: opening it again follows what was checked (a venv may be a link root made).
        int fd = posix.OpenAt(FileModes.AtCurrentDirectory, path, DirectoryFlags & ~OpenFlags.O_NOFOLLOW, 0);
        if (fd < 0)
        {
            return $"{NativeName.Display(path)} cannot be opened: {PosixException.Describe(PosixException.ErrnoOf(fd))}";
        }

        return RefusalBelow(posix, fd, path, owners, new DirectoryReader(posix, 64 * 1024));
    }

    /// <summary>Walks a directory it owns the descriptor of (closed here): each entry without following it, each subdirectory by descriptor.</summary>
    private static string? RefusalBelow(IPosix posix, int fd, string path, TrustedOwners owners, DirectoryReader reader)
    {
        try
        {
            var names = new List<string>();
            int listed = reader.ReadAll(fd, entry => names.Add(entry.Name));
            if (listed < 0)
            {
                return $"{NativeName.Display(path)} cannot be listed: {PosixException.Describe(PosixException.ErrnoOf(listed))}";
            }

            foreach (string name in names)
            {
                string entryPath = path + "/" + name;
                if (posix.LStatAt(fd, name, out var entry) < 0)
                {
                    continue; // gone meanwhile: nothing to run from it
                }

                bool link = (entry.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFLNK;
                if ((link ? NotOwned(entryPath, entry, owners) : Untrusted(entryPath, entry, owners)) is { } refusal)
                {
                    return refusal;
                }

                if ((entry.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
                {
                    continue;
                }

                int child = posix.OpenAt(fd, name, DirectoryFlags, 0);
                if (child < 0)
                {
                    return $"{NativeName.Display(entryPath)} cannot be opened: {PosixException.Describe(PosixException.ErrnoOf(child))}";
                }

                if (RefusalBelow(posix, child, entryPath, owners, reader) is { } below)
                {
                    return below;
                }
            }

            return null;
        }
        finally
        {
            posix.Close(fd);
        }
    }

    /// <summary>An entry another account owns, or may write.</summary>
    public static string? Untrusted(string path, in Stat stat, TrustedOwners owners) =>
        NotOwned(path, stat, owners)
        ?? (WritableByOthersThan(stat, owners) ? $"{NativeName.Display(path)} is writable by {Writers(stat)} (mode {Mode(stat)})" : null);

    /// <summary>Whether an account that is not trusted may write the entry (its group's write bit counts unless that is the agent's own group).</summary>
    public static bool WritableByOthersThan(in Stat stat, TrustedOwners owners) =>
        (stat.st_mode & FilePermissions.S_IWOTH) != 0 || ((stat.st_mode & FilePermissions.S_IWGRP) != 0 && !owners.TrustsGroup(stat.st_gid));

    private static string? NotOwned(string path, in Stat stat, TrustedOwners owners) =>
        owners.Contains(stat.st_uid) ? null : $"{NativeName.Display(path)} belongs to uid {stat.st_uid.ToString(CultureInfo.InvariantCulture)}, not {owners}";

    /// <summary>Who besides the owner may write an entry: "its group (gid 1000)", "everyone".</summary>
    public static string Writers(in Stat stat) =>
        (stat.st_mode & FilePermissions.S_IWOTH) != 0 ? "everyone" : $"its group (gid {stat.st_gid.ToString(CultureInfo.InvariantCulture)})";

    public static string Mode(in Stat stat) => Convert.ToString((int)(stat.st_mode & FilePermissions.ALLPERMS), 8).PadLeft(4, '0');

    /// <summary>
    /// A directory others may write, so that they could put anything at <paramref name="entry"/>'s
    /// name: refused, unless it is sticky and a trusted owner has the entry (only they may then rename or remove it).
    /// </summary>
    private static string? OpenToOthers(string directoryPath, in Stat directory, in Stat entry, TrustedOwners owners)
    {
        if (!WritableByOthersThan(directory, owners))
        {
            return null;
        }

        bool sticky = (directory.st_mode & FilePermissions.S_ISVTX) != 0;
        return sticky && owners.Contains(entry.st_uid)
            ? null
            : $"{NativeName.Display(directoryPath)} is writable by {Writers(directory)} (mode {Mode(directory)}), who could put anything there";
    }

    private static string[] Components(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// One path resolved as the kernel would, one name at a time, each looked at before it is
    /// passed: the directories walked so far are held open (their descriptors, not their names),
    /// so a rename behind the walk changes nothing it has checked.
    /// </summary>
    private sealed class Walk(IPosix posix, TrustedOwners owners, bool toCreateIn) : IDisposable
    {
        private readonly Stack<(int Fd, string Path, Stat Stat)> _walked = new();
        private readonly Stack<string> _pending = new();
        private int _links;

        /// <summary>Opens <c>/</c>; why it may not be trusted, or null.</summary>
        public string? Start()
        {
            int rootFd = posix.OpenAt(FileModes.AtCurrentDirectory, "/", DirectoryFlags, 0);
            if (rootFd < 0)
            {
                return $"/ cannot be opened: {PosixException.Describe(PosixException.ErrnoOf(rootFd))}";
            }

            int looked = posix.FStat(rootFd, out var rootStat);
            _walked.Push((rootFd, "/", rootStat));
            return looked < 0 ? $"/ cannot be looked at: {PosixException.Describe(PosixException.ErrnoOf(looked))}" : NotOwned("/", rootStat, owners);
        }

        /// <summary>Walks <paramref name="path"/> to its end: null when every step and the entry itself may be trusted.</summary>
        public string? Resolve(string path)
        {
            Push(path);
            while (_pending.TryPop(out string? name))
            {
                if (name == ".")
                {
                    continue;
                }

                if (name == "..")
                {
                    // Each directory on the stack was reached through its real parent: ".." is the one below it.
                    Up(toRoot: false);
                    continue;
                }

                if (Step(path, name) is { } refusal)
                {
                    return refusal;
                }
            }

            return null;
        }

        /// <summary>One name in the directory on top: refused, followed (a link), or entered; at the end of the path, the entry's own check.</summary>
        private string? Step(string path, string name)
        {
            var (dirFd, dirPath, dirStat) = _walked.Peek();
            string entryPath = dirPath == "/" ? "/" + name : dirPath + "/" + name;
            int found = posix.LStatAt(dirFd, name, out var entry);
            if (found < 0)
            {
                return $"{NativeName.Display(entryPath)} cannot be looked at: {PosixException.Describe(PosixException.ErrnoOf(found))}";
            }

            if (OpenToOthers(dirPath, dirStat, entry, owners) is { } openDirectory)
            {
                return openDirectory;
            }

            var type = entry.st_mode & FilePermissions.S_IFMT;
            if (type == FilePermissions.S_IFLNK)
            {
                return FollowLink(path, dirFd, name, entryPath);
            }

            if (_pending.Count == 0)
            {
                bool sticky = (entry.st_mode & FilePermissions.S_ISVTX) != 0;
                return toCreateIn && sticky && type == FilePermissions.S_IFDIR ? NotOwned(entryPath, entry, owners) : Untrusted(entryPath, entry, owners);
            }

            // A directory on the way: its owner could rename what is in it; who else may write it is asked at the next name.
            return NotOwned(entryPath, entry, owners)
                ?? (type != FilePermissions.S_IFDIR ? $"{NativeName.Display(entryPath)} is not a directory" : Enter(dirFd, name, entryPath, entry));
        }

        private string? FollowLink(string path, int dirFd, string name, string entryPath)
        {
            if (++_links > MaxLinks)
            {
                return $"{NativeName.Display(path)} leads through more than {MaxLinks} symlinks";
            }

            PosixException.Check(posix.ReadLinkAt(dirFd, name, out string target), "read the link", entryPath);
            if (target.StartsWith('/'))
            {
                Up(toRoot: true);
            }

            Push(target);
            return null;
        }

        private string? Enter(int dirFd, string name, string entryPath, in Stat entry)
        {
            int next = posix.OpenAt(dirFd, name, DirectoryFlags, 0);
            if (next < 0)
            {
                return $"{NativeName.Display(entryPath)} cannot be opened: {PosixException.Describe(PosixException.ErrnoOf(next))}";
            }

            // The directory as opened, not as looked at a moment before: what the next name is checked against.
            int looked = posix.FStat(next, out var opened);
            _walked.Push((next, entryPath, looked < 0 ? entry : opened));
            return looked < 0 ? $"{NativeName.Display(entryPath)} cannot be looked at: {PosixException.Describe(PosixException.ErrnoOf(looked))}" : NotOwned(entryPath, opened, owners);
        }

        private void Push(string path)
        {
            foreach (string component in Components(path).Reverse())
            {
                _pending.Push(component);
            }
        }

        /// <summary>One directory up, or back to <c>/</c>; never above it.</summary>
        private void Up(bool toRoot)
        {
            do
            {
                if (_walked.Count <= 1)
                {
                    return;
                }

                posix.Close(_walked.Pop().Fd);
            }
            while (toRoot);
        }

        public void Dispose()
        {
            while (_walked.TryPop(out var directory))
            {
                posix.Close(directory.Fd);
            }
        }
    }
}
