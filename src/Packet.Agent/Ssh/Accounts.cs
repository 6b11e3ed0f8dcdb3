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

/// <summary>The machine's own account database (getpwuid, getgrgid, getpwent), and sshd's view of files (stat, realpath).</summary>
public sealed class SystemAccounts : IAccounts
{
    public static readonly SystemAccounts Instance = new();

    private SystemAccounts()
    {
    }

    public Account? ByUid(uint uid) => Syscall.getpwuid(uid) is { } entry ? new Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir) : null;

    public Account? ByHome(string home)
    {
        Syscall.setpwent();
        try
        {
            while (Syscall.getpwent() is { } entry)
            {
                if (entry.pw_dir == home)
                {
                    return new Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir);
                }
            }

            return null;
        }
        finally
        {
            Syscall.endpwent();
        }
    }

    public bool HoldsOnly(uint gid, uint uid, uint owner)
    {
        if (Syscall.getgrgid(gid) is not { } group)
        {
            return false;
        }

        int members = 0;
        Syscall.setpwent();
        try
        {
            while (Syscall.getpwent() is { } entry)
            {
                if (entry.pw_gid == gid)
                {
                    if (entry.pw_uid != uid)
                    {
                        return false;
                    }

                    members++;
                }
            }
        }
        finally
        {
            Syscall.endpwent();
        }

        if (group.gr_mem is { Length: > 0 } listed)
        {
            if (listed.Length > 1 || ByUid(owner) is not { } ownerAccount || listed[0] != ownerAccount.Name)
            {
                return false;
            }

            members++;
        }

        return members > 0;
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
