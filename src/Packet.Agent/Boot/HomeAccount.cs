using Mono.Unix.Native;
using Packet.Agent.Cli;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;

namespace Packet.Agent.Boot;

/// <summary>
/// The account the home is for: hooks run as it, its folder on the volume keeps the home's records,
/// sshd lets the pod's keys in as it. It comes from the image or the operator, never from the
/// volume, whose owners a user of the volume can change (rename another folder to
/// <c>home</c>, link it elsewhere): <c>--user</c>; else, for a root agent, the owner of
/// <c>--home</c> in the image (a directory of the container's own, not a mount), else the
/// <c>/etc/passwd</c> account whose home it is; an agent that is not root acts for itself.
/// </summary>
/// <param name="Uid">The account's uid.</param>
/// <param name="Gid">Its group.</param>
/// <param name="Source">Where it came from, for the log: "--user", "the owner of /home/dev in the image".</param>
public sealed record HomeAccount(uint Uid, uint Gid, string Source)
{
    /// <summary>
    /// The account, or why none could be found (the live home is a link or a mount, and no
    /// /etc/passwd entry has it as its home).
    /// </summary>
    public static AccountChoice Resolve(IPosix posix, IAccounts accounts, BootOptions options)
    {
        if (posix.EffectiveUserId != 0)
        {
            return new(new HomeAccount(posix.EffectiveUserId, posix.EffectiveGroupId, "the agent's own user: it cannot act for another"), null);
        }

        if (options.User is { } user)
        {
            uint gid = user.Gid ?? accounts.ByUid(user.Uid)?.Gid ?? user.Uid;
            return new(new HomeAccount(user.Uid, gid, "--user"), null);
        }

        string home = options.Home;
        if (ImagesOwn(posix, home) is { } live)
        {
            return new(new HomeAccount(live.st_uid, live.st_gid, $"the owner of {home} in the image"), null);
        }

        // An earlier boot in this container linked the live home to the persisted one and moved the image's aside.
        string aside = home + LiveHome.ImageSuffix;
        if (ImagesOwn(posix, aside) is { } moved)
        {
            return new(new HomeAccount(moved.st_uid, moved.st_gid, $"the owner of the image's home, moved aside to {aside}"), null);
        }

        if (accounts.ByHome(home) is { } account)
        {
            return new(new HomeAccount(account.Uid, account.Gid, $"the /etc/passwd account whose home is {home}, {account.Name}"), null);
        }

        return new(null, $"{home} is not a directory of the image's own (a link, or a mounted volume) and no /etc/passwd account has it as its home; name the account with --user UID[:GID]");
    }

    /// <summary>A directory of the container's own (not a link, not a mount: on the same device as its parent); null otherwise.</summary>
    private static Stat? ImagesOwn(IPosix posix, string path) =>
        posix.LStatAt(FileModes.AtCurrentDirectory, path, out var entry) >= 0 && (entry.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR
        && posix.LStatAt(FileModes.AtCurrentDirectory, Path.GetDirectoryName(path) ?? "/", out var parent) >= 0 && parent.st_dev == entry.st_dev
            ? entry
            : null;

    /// <summary>"uid 1000 (the owner of /home/dev in the image)".</summary>
    public override string ToString() => $"uid {Uid} ({Source})";
}

/// <summary>The home's account, or why there is none (then nothing runs or logs in as the home's user).</summary>
public sealed record AccountChoice(HomeAccount? Account, string? Unknown)
{
    public static AccountChoice Of(HomeAccount account) => new(account, null);

    /// <summary>The folder of the home's records (its image manifest, which first-boot hooks succeeded): the account's own, or the agent's when the account is unknown; null when it does not exist.</summary>
    public DirectoryHandle? TryOpenRecords(IPosix posix, DirectoryHandle workspace) =>
        StateFolder.TryOpenAccount(posix, workspace, Account?.Uid ?? posix.EffectiveUserId);

    /// <summary>The folder of the home's records, made when missing.</summary>
    public DirectoryHandle CreateRecords(IPosix posix, DirectoryHandle workspace) =>
        StateFolder.CreateAccount(posix, workspace, Account?.Uid ?? posix.EffectiveUserId, Account?.Gid ?? posix.EffectiveGroupId);
}
