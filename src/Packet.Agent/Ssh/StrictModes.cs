using System.Globalization;

namespace Packet.Agent.Ssh;

/// <summary>What sshd's check refuses: the entry (its real path) and why, in an operator's words.</summary>
public sealed record StrictModesRefusal(string Path, string Why, bool GroupWritable)
{
    public override string ToString() => $"{Path} {Why}";
}

/// <summary>An entry as sshd's check sees it (stat, links followed).</summary>
public readonly record struct EntryOwnership(uint Uid, uint Gid, uint Mode);

/// <summary>The account database as sshd's check asks it: does a group hold only this user?</summary>
public interface IGroupMembership
{
    /// <summary>
    /// Debian's rule (misc.c <c>secure_permissions</c>, debian/patches/user-group-modes.patch): the
    /// group exists, every account whose primary group it is is <paramref name="uid"/> (the one
    /// logging in), it lists no supplementary member but the entry's <paramref name="owner"/>, and
    /// it has one of the two.
    /// </summary>
    bool HoldsOnly(uint gid, uint uid, uint owner);
}

/// <summary>
/// sshd's <c>StrictModes</c> check of an authorized_keys file, done by the agent before sshd does it
/// at each login, so that a refusal is a line in the boot's log with its fix instead of a silent
/// "Permission denied". As OpenSSH's <c>auth_secure_path</c> (auth.c): the file (its real path, links
/// resolved) and every folder above it, up to the account's home or else to /, must belong to root
/// or the account and be writable by no one else; a group-writable entry passes only where the group
/// holds the account alone, as Debian's and Ubuntu's sshd allow (upstream refuses any).
/// </summary>
public sealed class StrictModes(Func<string, EntryOwnership?> stat, Func<string, string?> realPath, IGroupMembership groups)
{
    private const uint GroupWrite = 0b000_010_000;
    private const uint OtherWrite = 0b000_000_010;

    /// <summary>Null when sshd takes the file; else which entry it refuses and why.</summary>
    /// <param name="keysFile">The authorized_keys file.</param>
    /// <param name="uid">The account logging in.</param>
    /// <param name="accountHome">Its home in /etc/passwd, where sshd's walk up from the file stops.</param>
    public StrictModesRefusal? Refusal(string keysFile, uint uid, string accountHome)
    {
        string? file = realPath(keysFile);
        if (file is null || stat(file) is not { } fileStat)
        {
            return null; // no file: sshd has nothing to refuse, and nothing to take either
        }

        string? home = realPath(accountHome);
        if (Problem(file, fileStat, uid) is { } refused)
        {
            return refused;
        }

        for (string? directory = Path.GetDirectoryName(file); directory is not null; directory = Path.GetDirectoryName(directory))
        {
            if (stat(directory) is not { } directoryStat)
            {
                return new StrictModesRefusal(directory, "cannot be looked at", GroupWritable: false);
            }

            if (Problem(directory, directoryStat, uid) is { } problem)
            {
                return problem;
            }

            if (directory == home)
            {
                break;
            }
        }

        return null;
    }

    private StrictModesRefusal? Problem(string path, EntryOwnership entry, uint uid)
    {
        string mode = Convert.ToString(entry.Mode & 0b111_111_111_111, 8).PadLeft(4, '0');
        if (entry.Uid != 0 && entry.Uid != uid)
        {
            return new(path, $"belongs to uid {entry.Uid.ToString(CultureInfo.InvariantCulture)}, neither root nor the account logging in (uid {uid.ToString(CultureInfo.InvariantCulture)})", GroupWritable: false);
        }

        if ((entry.Mode & OtherWrite) != 0)
        {
            return new(path, $"is mode {mode}, writable by everyone", GroupWritable: false);
        }

        if ((entry.Mode & GroupWrite) != 0 && !groups.HoldsOnly(entry.Gid, uid, entry.Uid))
        {
            return new(path, $"is mode {mode}, writable by its group (gid {entry.Gid.ToString(CultureInfo.InvariantCulture)}), which holds other accounts than uid {uid.ToString(CultureInfo.InvariantCulture)}", GroupWritable: true);
        }

        return null;
    }
}
