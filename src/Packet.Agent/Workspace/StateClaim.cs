using System.Globalization;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Workspace;

/// <summary>What root does to make its part of the volume its own again.</summary>
public enum ClaimKind
{
    /// <summary><c>.packet</c> is not a directory (a link, a file): moved aside whole; a fresh one is made.</summary>
    MoveStateAside,

    /// <summary><c>.packet</c> is missing: made (root's) with its lock.</summary>
    MakeState,

    /// <summary>
    /// <c>.packet</c> belongs to another account (an agent before this one gave it to the home's
    /// owner): given to root, writable by root alone. The kernel checks rights at every call, so
    /// from then on no other account can add, rename or remove anything in it.
    /// </summary>
    TakeBack,

    /// <summary>Root's, but others may write it (a pod's fsGroup makes the volume group-writable at every mount): their write bits removed.</summary>
    Tighten,

    /// <summary>
    /// An entry of root's names that another account owns: the state its own agent kept there
    /// before root's and a user's were apart. Moved into that account's folder, where it is that user's.
    /// </summary>
    GiveToAccount,

    /// <summary>
    /// What root cannot trust and no account can have: a link, a FIFO, a file with other names (a
    /// hard link), a folder others could have written into, host keys others could have read.
    /// Moved aside (<c>NAME.untrusted-TIME</c>), never read, never deleted.
    /// </summary>
    MoveAside,

    /// <summary>The lock file, made so that an agent that is not root can take it (flock through a read-only descriptor).</summary>
    MakeLock,

    /// <summary>The home's account's folder (<c>user-UID</c>), made for it.</summary>
    MakeAccountFolder,
}

/// <summary>One thing the claim does: to which entry of <c>.packet</c> (<c>.</c>: the folder itself), why, and for whom.</summary>
public sealed record ClaimAction(ClaimKind Kind, string Name, string Why, uint Uid = 0, uint Gid = 0);

/// <summary>
/// What a claim did: whom the volume lets root trust (<see cref="VolumeTrust"/>: found by trying
/// to give the folder to root and close it to others), the actions carried out, whether they differ
/// from the survey's (the entries are surveyed again once the folder is root's), and whether the
/// volume turned out to keep no modes or owners.
/// </summary>
public sealed record ClaimOutcome(VolumeTrust Trust, IReadOnlyList<ClaimAction> Done, bool Replanned, bool VolumeLearned);

/// <summary>
/// Root's part of the volume made root's alone, once, before any step trusts it: the guard surveys
/// <c>.packet</c> (one lstat when it is root's already) and carries out what the survey found. A
/// folder that another account owned or could write may hold anything that account put there, so
/// each entry root keeps (<see cref="WorkspaceLayout.RootKept"/>) is then looked at: another
/// account's goes to that account's folder, what no account should have is moved aside, what fsGroup
/// merely loosened is tightened. Nothing is followed, read or deleted: names are moved by descriptor.
/// </summary>
public sealed class StateClaim(IPosix posix, TimeProvider clock)
{
    private const FilePermissions WriteByOthers = FilePermissions.S_IWGRP | FilePermissions.S_IWOTH;

    /// <summary>What root must do to its part of the volume, found by looking; empty when it is root's alone and complete.</summary>
    /// <param name="workspace">The open workspace.</param>
    /// <param name="account">The home's account (uid, gid): its folder is made when it is not root.</param>
    public IReadOnlyList<ClaimAction> Survey(DirectoryHandle workspace, (uint Uid, uint Gid)? account)
    {
        var trust = workspace.Trust;
        var actions = new List<ClaimAction>();
        int found = workspace.LStat(WorkspaceLayout.State, out var state);
        if (found < 0 || !IsType(state, FilePermissions.S_IFDIR))
        {
            if (found >= 0)
            {
                actions.Add(new(ClaimKind.MoveStateAside, ".", $"it is {Describe(state)}, not a directory"));
            }

            actions.Add(new(ClaimKind.MakeState, ".", "root's part of the volume"));
            actions.Add(new(ClaimKind.MakeLock, WorkspaceLayout.Lock, "for every agent on the volume"));
            AddAccountFolder(actions, account, state: null);
            return actions;
        }

        if (!trust.Trusts(state.st_uid))
        {
            actions.Add(new(ClaimKind.TakeBack, ".", $"it belongs to uid {state.st_uid}"));
        }
        else if (trust.WritableByOthers(state))
        {
            actions.Add(new(ClaimKind.Tighten, ".", $"it is writable by {SafePath.Writers(state)} (mode {SafePath.Mode(state)})"));
        }

        // Every boot, not only when the folder was another's: a claim that stopped halfway left its entries as they were.
        using var folder = workspace.TryOpenDirectory(WorkspaceLayout.State)
            ?? throw new IOException($"{workspace.PathOf(WorkspaceLayout.State)} went away while it was looked at");
        actions.AddRange(SurveyOpen(folder, account, trust));
        return actions;
    }

    /// <summary>What the open folder's entries need: each looked at, the lock, the home's account's folder.</summary>
    private List<ClaimAction> SurveyOpen(DirectoryHandle folder, (uint Uid, uint Gid)? account, VolumeTrust trust)
    {
        var actions = new List<ClaimAction>();
        SurveyEntries(folder, trust, actions);
        if (!folder.Exists(WorkspaceLayout.Lock) || actions.Any(a => a.Name == WorkspaceLayout.Lock))
        {
            actions.Add(new(ClaimKind.MakeLock, WorkspaceLayout.Lock, "for every agent on the volume"));
        }

        AddAccountFolder(actions, account, folder);
        return actions;
    }

    /// <summary>
    /// Carries a survey out: the folder itself first (moved aside, made, given to root, closed to
    /// others), then its entries, surveyed again now that no other account can change them (until
    /// then the folder's owner could), knowing what the volume kept of the claim (a FAT or exFAT
    /// volume shows every entry writable by all; NFS root_squash gives root's files to the anonymous
    /// uid). What must leave goes first, so that nothing another account planted (a link at
    /// <c>user-UID</c>) stops the rest. A step that fails stops the claim with what failed.
    /// </summary>
    public ClaimOutcome Apply(DirectoryHandle workspace, IReadOnlyList<ClaimAction> actions, (uint Uid, uint Gid)? account)
    {
        string stamp = clock.GetUtcNow().UtcDateTime.ToString("yyyyMMddTHHmmssZ", CultureInfo.InvariantCulture);
        if (actions.Any(a => a.Kind == ClaimKind.MoveStateAside))
        {
            MoveAside(workspace, WorkspaceLayout.State, stamp);
        }

        // One descriptor from here on: another account that may write the workspace can rename folders to
        // .packet at will, so what the volume keeps is learnt from the folder root itself just changed.
        using var state = actions.Any(a => a.Kind == ClaimKind.MakeState)
            ? workspace.CreateDirectory(WorkspaceLayout.State, FileModes.Directory)
            : workspace.OpenDirectory(WorkspaceLayout.State);
        TakeFolder(state);
        var trust = Settled(state, workspace.Trust);
        bool volumeLearned = trust != workspace.Trust;
        workspace.TrustAs(trust);
        var planned = actions.Where(a => a.Name != ".").ToList();
        var rest = SurveyOpen(state, account, trust).OrderBy(a => a.Kind != ClaimKind.MoveAside).ToList();
        foreach (var action in rest)
        {
            Apply(state, action, stamp);
        }

        return new ClaimOutcome(trust, [.. actions.Where(a => a.Name == "."), .. rest], !rest.ToHashSet().SetEquals(planned), volumeLearned);
    }

    /// <summary>
    /// The folder root holds open given to root and closed to others, whatever the survey found: it
    /// may be another folder by now (made first by another account, or renamed into place). What the
    /// volume refuses of that is what <see cref="Settled"/> learns.
    /// </summary>
    private void TakeFolder(DirectoryHandle state)
    {
        PosixException.Check(posix.FStat(state.Fd, out var stat), "stat", state.Path);
        if (stat.st_uid != 0 || stat.st_gid != 0)
        {
            Tolerated(posix.FChown(state.Fd, 0, 0), "give to root", state.Path);
        }

        if ((stat.st_mode & FilePermissions.ALLPERMS) != FileModes.Directory)
        {
            Tolerated(posix.FChmod(state.Fd, FileModes.Directory), "set the mode of", state.Path);
        }
    }

    /// <summary>
    /// Whom root may trust on this volume, from what it kept of root's claim on the folder: the uid
    /// it shows as the owner when root could not take it (root_squash, FAT's uid=), and no write bit
    /// when it shows others' write after root removed it (a volume without modes).
    /// </summary>
    private VolumeTrust Settled(DirectoryHandle state, VolumeTrust trust)
    {
        PosixException.Check(posix.FStat(state.Fd, out var kept), "stat", state.Path);
        uint? volumeOwner = trust.Trusts(kept.st_uid) ? trust.VolumeOwner : kept.st_uid;
        bool keepsModes = trust.KeepsModes && !SafePath.WritableByOthersThan(kept, trust.Owners);
        return trust with { VolumeOwner = volumeOwner, KeepsModes = keepsModes };
    }

    /// <summary>A refusal that only says the volume keeps no owners or modes is what <see cref="Settled"/> finds out; anything else stops the claim.</summary>
    private static void Tolerated(int result, string operation, string path)
    {
        if (result < 0 && !ErrnoMeaning.VolumeRefuses(PosixException.ErrnoOf(result)))
        {
            throw new PosixException(operation, path, PosixException.ErrnoOf(result));
        }
    }

    /// <summary>The entries a folder others could write may hold from them, each looked at without following it.</summary>
    private void SurveyEntries(DirectoryHandle folder, VolumeTrust trust, List<ClaimAction> actions)
    {
        var names = new List<string>();
        PosixException.Check(new DirectoryReader(posix, 16 * 1024).ReadAll(folder.Fd, entry => names.Add(entry.Name)), "list", folder.Path);
        foreach (string name in names.Order(StringComparer.Ordinal))
        {
            if (folder.LStat(name, out var entry) < 0)
            {
                continue;
            }

            if (AccountFolderUid(name) is { } uid)
            {
                if (!IsType(entry, FilePermissions.S_IFDIR) || entry.st_uid != uid)
                {
                    actions.Add(new(ClaimKind.MoveAside, name, $"it is {Describe(entry)}, not uid {uid}'s folder"));
                }

                continue;
            }

            if (name is WorkspaceLayout.BootHooks or WorkspaceLayout.FirstBootHooks)
            {
                // The hooks' account's by design, but only as a folder: a link there could lead root anywhere.
                if (!IsType(entry, FilePermissions.S_IFDIR))
                {
                    actions.Add(new(ClaimKind.MoveAside, name, $"it is {Describe(entry)}"));
                }
            }
            else if (WorkspaceLayout.RootKept.Contains(name) || name.Contains(".packet-tmp-", StringComparison.Ordinal))
            {
                SurveyRootEntry(folder, name, entry, trust, actions);
            }
        }
    }

    private void SurveyRootEntry(DirectoryHandle folder, string name, in Stat entry, VolumeTrust trust, List<ClaimAction> actions)
    {
        bool isFile = IsType(entry, FilePermissions.S_IFREG);
        bool isDirectory = IsType(entry, FilePermissions.S_IFDIR);
        if (!isFile && !isDirectory)
        {
            actions.Add(new(ClaimKind.MoveAside, name, $"it is {Describe(entry)}"));
        }
        else if (!trust.Trusts(entry.st_uid))
        {
            actions.Add(new(ClaimKind.GiveToAccount, name, $"it belongs to uid {entry.st_uid}", entry.st_uid, entry.st_gid));
        }
        else if (isFile && entry.st_nlink > 1)
        {
            actions.Add(new(ClaimKind.MoveAside, name, $"it has {entry.st_nlink} names (a hard link)"));
        }
        else if (!trust.KeepsModes)
        {
            // Every entry shows the mount's mode: no bit here says who else could reach it.
        }
        else if (name == WorkspaceLayout.HostKeys && ExposedKeys(folder, entry, trust) is { } exposed)
        {
            actions.Add(new(ClaimKind.MoveAside, name, exposed));
        }
        else if (isDirectory && name == WorkspaceLayout.Staging && (entry.st_mode & WriteByOthers) != 0)
        {
            actions.Add(new(ClaimKind.MoveAside, name, $"others could write into the unfinished copy (mode {SafePath.Mode(entry)}); the seed starts over"));
        }
        else if ((entry.st_mode & WriteByOthers) != 0)
        {
            actions.Add(new(ClaimKind.Tighten, name, $"it is writable by {SafePath.Writers(entry)} (mode {SafePath.Mode(entry)})"));
        }
    }

    /// <summary>Why host keys in the folder may be known to others; null when the folder and every file in it are root's alone.</summary>
    private string? ExposedKeys(DirectoryHandle state, in Stat folder, VolumeTrust trust)
    {
        const string Known = "the host keys in it may have been read by others; a new one is made (clients see the pod's host key change once)";
        if ((folder.st_mode & FilePermissions.ALLPERMS) != FileModes.PrivateDirectory)
        {
            return $"it is mode {SafePath.Mode(folder)}: {Known}";
        }

        using var keys = state.OpenDirectory(WorkspaceLayout.HostKeys);
        var names = new List<string>();
        PosixException.Check(new DirectoryReader(posix, 16 * 1024).ReadAll(keys.Fd, entry => names.Add(entry.Name)), "list", keys.Path);
        foreach (string name in names)
        {
            if (keys.LStat(name, out var key) >= 0 && !RootsAlone(name, key, trust))
            {
                return $"{keys.PathOf(name)} is {Describe(key)}: {Known}";
            }
        }

        return null;
    }

    /// <summary>A key file root alone made and may change: a regular file of root's (the squashed uid's on NFS root_squash) with one name, which only a public key's readers besides root may read.</summary>
    private static bool RootsAlone(string name, in Stat key, VolumeTrust trust)
    {
        var othersMay = key.st_mode & (FilePermissions.S_IRWXG | FilePermissions.S_IRWXO);
        var othersMayRead = name.EndsWith(".pub", StringComparison.Ordinal) ? FilePermissions.S_IRGRP | FilePermissions.S_IROTH : 0;
        return IsType(key, FilePermissions.S_IFREG) && trust.Trusts(key.st_uid) && key.st_nlink == 1 && (othersMay & ~othersMayRead) == 0;
    }

    private void Apply(DirectoryHandle state, ClaimAction action, string stamp)
    {
        switch (action.Kind)
        {
            case ClaimKind.Tighten:
                Tighten(state, action.Name);
                break;
            case ClaimKind.GiveToAccount:
                GiveToAccount(state, action, stamp);
                break;
            case ClaimKind.MoveAside:
                MoveAside(state, action.Name, stamp);
                break;
            case ClaimKind.MakeLock:
                int fd = posix.OpenAt(state.Fd, WorkspaceLayout.Lock, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, FileModes.Readable);
                if (fd < 0 && PosixException.ErrnoOf(fd) != Errno.EEXIST)
                {
                    PosixException.Check(fd, "create", state.PathOf(WorkspaceLayout.Lock));
                }

                if (fd >= 0)
                {
                    posix.FChmod(fd, FileModes.Readable);
                    posix.Close(fd);
                }

                break;
            default:
                state.CreateDirectory(action.Name, FileModes.Directory, (action.Uid, action.Gid)).Dispose();
                break;
        }
    }

    /// <summary>An entry root made that fsGroup loosened: opened without following it (no one else can swap it now) and its others' write bits removed.</summary>
    private void Tighten(DirectoryHandle state, string name)
    {
        int fd = PosixException.Check(posix.OpenAt(state.Fd, name, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC, 0), "open", state.PathOf(name));
        try
        {
            PosixException.Check(posix.FStat(fd, out var stat), "stat", state.PathOf(name));
            PosixException.Check(posix.FChmod(fd, stat.st_mode & FilePermissions.ALLPERMS & ~WriteByOthers), "set the mode of", state.PathOf(name));
        }
        finally
        {
            posix.Close(fd);
        }
    }

    /// <summary>Into <c>user-UID</c> (made for that account when missing) under the same name; moved aside instead when the name is taken there.</summary>
    private void GiveToAccount(DirectoryHandle state, ClaimAction action, string stamp)
    {
        using var account = state.CreateDirectory(WorkspaceLayout.AccountFolder(action.Uid), FileModes.Directory, (action.Uid, action.Gid));
        int moved = NoReplaceRename.Move(posix, state.Fd, action.Name, account.Fd, action.Name);
        if (moved < 0 && PosixException.ErrnoOf(moved) == Errno.EEXIST)
        {
            MoveAside(state, action.Name, stamp);
            return;
        }

        PosixException.Check(moved, $"move into {account.Path}", state.PathOf(action.Name));
    }

    private void MoveAside(DirectoryHandle folder, string name, string stamp)
    {
        string aside = name + WorkspaceLayout.UntrustedSuffix + stamp;
        PosixException.Check(NoReplaceRename.Move(posix, folder.Fd, name, folder.Fd, aside), $"move aside to {folder.PathOf(aside)}", folder.PathOf(name));
    }

    private static void AddAccountFolder(List<ClaimAction> actions, (uint Uid, uint Gid)? account, DirectoryHandle? state)
    {
        if (account is not { Uid: not 0 } user)
        {
            return;
        }

        string name = WorkspaceLayout.AccountFolder(user.Uid);
        if (state is not null && state.Exists(name) && !actions.Any(a => a.Name == name))
        {
            return;
        }

        actions.Add(new(ClaimKind.MakeAccountFolder, name, $"the home's account (uid {user.Uid})", user.Uid, user.Gid));
    }

    private static uint? AccountFolderUid(string name) =>
        name.StartsWith(WorkspaceLayout.AccountFolderPrefix, StringComparison.Ordinal)
        && uint.TryParse(name.AsSpan(WorkspaceLayout.AccountFolderPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out uint uid)
            ? uid
            : null;

    private static bool IsType(in Stat stat, FilePermissions type) => (stat.st_mode & FilePermissions.S_IFMT) == type;

    /// <summary>An entry in words, for the log: "a symlink", "a FIFO", "uid 1000's directory".</summary>
    private static string Describe(in Stat stat) => (stat.st_mode & FilePermissions.S_IFMT) switch
    {
        FilePermissions.S_IFLNK => "a symlink",
        FilePermissions.S_IFIFO => "a FIFO",
        FilePermissions.S_IFSOCK => "a socket",
        FilePermissions.S_IFCHR or FilePermissions.S_IFBLK => "a device",
        FilePermissions.S_IFDIR => $"uid {stat.st_uid}'s directory, mode {SafePath.Mode(stat)}",
        _ => $"uid {stat.st_uid}'s file, mode {SafePath.Mode(stat)}",
    };
}
