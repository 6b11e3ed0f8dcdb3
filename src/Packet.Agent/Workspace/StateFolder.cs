using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Workspace;

/// <summary>
/// The agent's part of the volume, reached so that nothing another account can change is trusted
/// (docs/volumes.md, "Who owns what"). <c>/workspace/.packet</c> is root's when a root agent uses the
/// volume: its lock, staging, reports, logs, host keys and the records of a root home, all root's,
/// writable by no one else (the guard takes back one that is not, <see cref="StateClaim"/>).
/// Inside it, by design, some parts are a user's: the hook folders, and each account's folder
/// <c>user-UID</c> (its home's records, and the state of an agent that runs as that user). Every
/// folder is opened by descriptor without following a link, and checked after it is open: a
/// folder another account could change is refused, never used.
/// </summary>
public static class StateFolder
{
    /// <summary><c>.packet</c> itself (the lock, the hook folders), checked; null when it does not exist.</summary>
    public static DirectoryHandle? TryOpenShared(IPosix posix, DirectoryHandle workspace) =>
        Checked(posix, workspace.TryOpenDirectory(WorkspaceLayout.State), owner: null);

    /// <summary><c>.packet</c>, made when missing (a root boot's guard makes it first, with the lock an agent that is not root takes).</summary>
    public static DirectoryHandle CreateShared(IPosix posix, DirectoryHandle workspace) =>
        Checked(posix, workspace.CreateDirectory(WorkspaceLayout.State, FileModes.Directory), owner: null)!;

    /// <summary>The agent's own state folder: <c>.packet</c> for root, <c>.packet/user-UID</c> otherwise; null when it does not exist.</summary>
    public static DirectoryHandle? TryOpenOwn(IPosix posix, DirectoryHandle workspace) => TryOpenAccount(posix, workspace, posix.EffectiveUserId);

    /// <summary>The agent's own state folder, made when missing.</summary>
    public static DirectoryHandle CreateOwn(IPosix posix, DirectoryHandle workspace) =>
        CreateAccount(posix, workspace, posix.EffectiveUserId, posix.EffectiveGroupId);

    /// <summary>
    /// The folder of account <paramref name="uid"/>, where its home's records are kept: <c>.packet</c>
    /// for root, <c>.packet/user-UID</c> (that user's) otherwise; null when it does not exist.
    /// </summary>
    public static DirectoryHandle? TryOpenAccount(IPosix posix, DirectoryHandle workspace, uint uid)
    {
        if (uid == 0)
        {
            return TryOpenShared(posix, workspace);
        }

        using var shared = TryOpenShared(posix, workspace);
        return shared is null ? null : Checked(posix, shared.TryOpenDirectory(WorkspaceLayout.AccountFolder(uid)), owner: uid);
    }

    /// <summary>Account <paramref name="uid"/>'s folder, made when missing (by root for that user, or by the agent for itself).</summary>
    public static DirectoryHandle CreateAccount(IPosix posix, DirectoryHandle workspace, uint uid, uint gid)
    {
        var shared = CreateShared(posix, workspace);
        if (uid == 0)
        {
            return shared;
        }

        using (shared)
        {
            return Checked(posix, shared.CreateDirectory(WorkspaceLayout.AccountFolder(uid), FileModes.Directory, (uid, gid)), owner: uid)!;
        }
    }

    /// <summary>
    /// Why a folder of the agent's state may not be used; null when it may. <paramref name="owner"/>
    /// is the account a user's folder must belong to; null for <c>.packet</c> itself, which must be
    /// root's (or, for an agent that is not root, root's or its own) and writable by no one else.
    /// </summary>
    public static string? Refusal(IPosix posix, in Stat stat, uint? owner, VolumeTrust trust)
    {
        if (owner is { } account)
        {
            return stat.st_uid != account && !(account == posix.EffectiveUserId && trust.VolumeOwner == stat.st_uid)
                ? $"it belongs to uid {stat.st_uid}, not to uid {account} whose folder it is"
                : account == posix.EffectiveUserId && trust.WritableByOthers(stat)
                    ? $"it is writable by {SafePath.Writers(stat)} (mode {SafePath.Mode(stat)})"
                    : null;
        }

        string keeper = posix.EffectiveUserId == 0 ? "root keeps its state only where no other account can write" : $"uid {posix.EffectiveUserId} keeps its state only where no other account can write";
        return !trust.Trusts(stat.st_uid) ? $"it belongs to uid {stat.st_uid} ({keeper}; a root boot takes it back)"
            : trust.WritableByOthers(stat) ? $"it is writable by {SafePath.Writers(stat)}, mode {SafePath.Mode(stat)} ({keeper}; a root boot takes it back)"
            : null;
    }

    /// <summary>
    /// What an agent that is not root must be able to write, the first it may not (relative to the
    /// workspace, "." for the workspace itself): its home and bin (the workspace while one is
    /// missing) and its own state folder (else the folder it would be made in). Null when all are writable.
    /// </summary>
    public static (string Name, Stat Stat)? FirstUnwritable(IPosix posix, DirectoryHandle workspace)
    {
        const int WriteAndSearch = 2 | 1; // W_OK | X_OK
        string own = WorkspaceLayout.AccountState(posix.EffectiveUserId);
        string[] kept = [WorkspaceLayout.Home, WorkspaceLayout.Bin];
        string state = workspace.Exists(own) ? own : workspace.Exists(WorkspaceLayout.State) ? WorkspaceLayout.State : ".";
        string[] all = [".", .. kept, state];
        var needed = kept.All(workspace.Exists) ? all.Skip(1) : all.Distinct();
        foreach (string name in needed)
        {
            if (workspace.LStat(name, out var stat) >= 0 && posix.AccessAt(workspace.Fd, name, WriteAndSearch) < 0)
            {
                return (name, stat);
            }
        }

        return null;
    }

    private static DirectoryHandle? Checked(IPosix posix, DirectoryHandle? folder, uint? owner)
    {
        if (folder is null)
        {
            return null;
        }

        int looked = posix.FStat(folder.Fd, out var stat);
        string? refusal = looked < 0 ? PosixException.Describe(PosixException.ErrnoOf(looked)) : Refusal(posix, stat, owner, folder.Trust);
        if (refusal is null)
        {
            return folder;
        }

        folder.Dispose();
        throw new UnsafeWorkspaceException(folder.Path, refusal);
    }
}
