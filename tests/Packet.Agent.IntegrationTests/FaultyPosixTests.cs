using Mono.Unix.Native;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The integration tests' adapter refuses to change anything outside the tests' own trees, whatever the code under test asks.</summary>
public sealed class FaultyPosixTests : IDisposable
{
    private readonly TempDirectory _dir = new("confined");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Changes_inside_a_test_tree_go_through()
    {
        var posix = new FaultyPosix();
        int dir = Syscall.open(_dir.Path, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
        try
        {
            Assert.Equal(0, posix.MkdirAt(dir, "made", FilePermissions.S_IRWXU));
            Assert.Equal(0, posix.RenameAt(dir, "made", dir, "moved", noReplace: false));
            Assert.Equal(0, posix.UnlinkAt(-100, _dir["moved"], isDirectory: true));
        }
        finally
        {
            Syscall.close(dir);
        }
    }

    [Fact]
    public void A_change_at_the_root_or_through_a_path_that_climbs_out_is_refused_before_it_is_made()
    {
        var posix = new FaultyPosix();
        int root = Syscall.open("/", OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
        try
        {
            Assert.Contains("unlinkat /root", Assert.Throws<TestEscapeException>(() => posix.UnlinkAt(root, "root", isDirectory: true)).Message, StringComparison.Ordinal);
            Assert.Throws<TestEscapeException>(() => posix.MkdirAt(-100, Path.Join(_dir.Path, "../not-a-test-tree"), FilePermissions.S_IRWXU));
            Assert.Throws<TestEscapeException>(() => posix.RenameAt(root, "etc", -100, _dir["stolen"], noReplace: true));
            Assert.Throws<TestEscapeException>(() => posix.OpenAt(root, "etc/hostname", OpenFlags.O_WRONLY, 0));
            Assert.True(Directory.Exists("/etc"));
        }
        finally
        {
            Syscall.close(root);
        }
    }

    [Fact]
    public void A_change_through_a_descriptor_of_a_file_outside_is_refused_and_reading_anything_is_not()
    {
        var posix = new FaultyPosix();
        int hostname = Syscall.open("/etc/hostname", OpenFlags.O_RDONLY | OpenFlags.O_CLOEXEC);
        try
        {
            Assert.Throws<TestEscapeException>(() => posix.FChmod(hostname, FilePermissions.S_IRUSR));
            Assert.Throws<TestEscapeException>(() => posix.FTruncate(hostname, 0));
            Assert.True(posix.PRead(hostname, new byte[16], 0) > 0);
        }
        finally
        {
            Syscall.close(hostname);
        }
    }

    [Fact]
    public void No_signal_goes_to_every_process_to_init_or_to_the_tests_themselves_but_a_liveness_check_does()
    {
        var posix = new FaultyPosix();

        Assert.Throws<TestEscapeException>(() => posix.Kill(-1, 9));
        Assert.Throws<TestEscapeException>(() => posix.Kill(1, 15));
        Assert.Throws<TestEscapeException>(() => posix.Kill(-Environment.ProcessId, 15));
        Assert.Equal(0, posix.Kill(1, 0));
    }
}
