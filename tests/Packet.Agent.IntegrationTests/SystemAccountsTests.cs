using Packet.Agent.Ssh;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The machine's own account database, read as sshd reads it. Only what every Linux machine has is
/// relied on: root is uid 0 with gid 0 and home /root, and no other account has group 0 as its primary one.
/// </summary>
public sealed class SystemAccountsTests
{
    private const uint NoSuchId = 4_123_456;

    [Fact]
    public void Accounts_are_found_by_uid_and_by_home()
    {
        Assert.Equal(new Account("root", 0, 0, "/root"), SystemAccounts.Instance.ByUid(0));
        Assert.Equal("root", SystemAccounts.Instance.ByHome("/root")?.Name);
        Assert.Null(SystemAccounts.Instance.ByUid(NoSuchId));
        Assert.Null(SystemAccounts.Instance.ByHome("/nonexistent/packet-agent-home"));
    }

    [Fact]
    public void The_root_group_holds_root_alone_and_no_other_account()
    {
        Assert.True(SystemAccounts.Instance.HoldsOnly(0, 0, 0));
        Assert.False(SystemAccounts.Instance.HoldsOnly(0, 1000, 1000));
    }

    [Fact]
    public void A_group_the_machine_does_not_have_holds_no_one() =>
        Assert.False(SystemAccounts.Instance.HoldsOnly(NoSuchId, 0, 0));

    [Fact]
    public void Files_are_seen_as_sshd_sees_them_through_links_and_a_missing_one_is_nothing()
    {
        using var dir = new TempDirectory("accounts");
        File.WriteAllText(dir["file"], string.Empty);
        File.CreateSymbolicLink(dir["link"], dir["file"]);
        Assert.Equal(0, Mono.Unix.Native.Syscall.chmod(dir["file"], Mono.Unix.Native.FilePermissions.S_IRUSR | Mono.Unix.Native.FilePermissions.S_IWUSR));

        Assert.Equal(dir["file"], SystemAccounts.RealPath(dir["link"]));
        Assert.Equal(0b110_000_000u, SystemAccounts.Stat(dir["link"])!.Value.Mode & 0b111_111_111u);
        Assert.Null(SystemAccounts.RealPath(dir["missing"]));
        Assert.Null(SystemAccounts.Stat(dir["missing"]));
    }
}
