using System.Runtime.InteropServices;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Ssh;

/// <summary>An account of /etc/passwd (or whatever NSS serves), as sshd will look it up.</summary>
public sealed record Account(string Name, uint Uid, uint Gid, string Home);

/// <summary>The account database, as the steps ask it.</summary>
public interface IAccounts : IGroupMembership
{
    /// <summary>The account with this uid; null when there is none (sshd could log no one in as its owner).</summary>
    Account? ByUid(uint uid);

    /// <summary>The first account whose home is <paramref name="home"/>; null when none is.</summary>
    Account? ByHome(string home);
}

/// <summary>
/// Debian's user-group rule over an account database (misc.c <c>secure_permissions</c>,
/// debian/patches/user-group-modes.patch), apart from how the database is read: a group holds
/// the account logging in alone when it exists, every account whose primary group it is is that
/// uid, it lists no supplementary member but the owner's name, and it has one of the two.
/// </summary>
public static class UserGroups
{
    /// <param name="accounts">Every account of the database.</param>
    /// <param name="members">The group's supplementary members by name; null when there is no such group.</param>
    /// <param name="gid">The group.</param>
    /// <param name="uid">The account logging in.</param>
    /// <param name="owner">The entry's owner, the one name the group may list.</param>
    public static bool HoldsOnly(IEnumerable<Account> accounts, IReadOnlyList<string>? members, uint gid, uint uid, uint owner)
    {
        if (members is null)
        {
            return false;
        }

        var primary = accounts.Where(account => account.Gid == gid).ToList();
        if (primary.Any(account => account.Uid != uid))
        {
            return false;
        }

        if (members.Count == 0)
        {
            return primary.Count > 0;
        }

        return members.Count == 1 && accounts.FirstOrDefault(account => account.Uid == owner) is { } ownerAccount && members[0] == ownerAccount.Name;
    }
}

/// <summary>The machine's own account database (getpwuid, getgrgid, getpwent), and sshd's view of files (stat, realpath).</summary>
public sealed class SystemAccounts : IAccounts
{
    public static readonly SystemAccounts Instance = new();

    private SystemAccounts()
    {
    }

    public Account? ByUid(uint uid) => Syscall.getpwuid(uid) is { } entry ? new Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir) : null;

    public Account? ByHome(string home) => All().FirstOrDefault(account => account.Home == home);

    public bool HoldsOnly(uint gid, uint uid, uint owner) =>
        UserGroups.HoldsOnly(All(), Syscall.getgrgid(gid) is { } group ? group.gr_mem ?? [] : null, gid, uid, owner);

    /// <summary>Every account of the database, in its order.</summary>
    private static List<Account> All()
    {
        var accounts = new List<Account>();
        Syscall.setpwent();
        try
        {
            while (Syscall.getpwent() is { } entry)
            {
                accounts.Add(new Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir));
            }

            return accounts;
        }
        finally
        {
            Syscall.endpwent();
        }
    }

    /// <summary>stat(2), links followed, as sshd looks.</summary>
    public static EntryOwnership? Stat(string path) =>
        Syscall.stat(path, out var stat) == 0 ? new EntryOwnership(stat.st_uid, stat.st_gid, (uint)stat.st_mode) : null;

    /// <summary>realpath(3): the path with every link resolved; null when it does not resolve.</summary>
    public static string? RealPath(string path)
    {
        nint resolved = LibC.realpath(path, 0);
        if (resolved == 0)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            LibC.free(resolved);
        }
    }

    /// <summary>sshd's StrictModes check on this machine.</summary>
    public static StrictModes StrictModes() => new(Stat, RealPath, Instance);
}
