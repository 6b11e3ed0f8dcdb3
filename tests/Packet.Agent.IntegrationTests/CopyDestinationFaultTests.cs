using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// What the workspace refuses while a home is copied, one call at a time, each answered as a
/// network or FUSE volume answers (EPERM from NFS and vfat for links, EINVAL for names FAT cannot
/// hold, EACCES for a folder the agent may not write, ENOSPC and EIO for a volume full or failing):
/// a loss counted, an entry left out and named, or the end of the copy.
/// </summary>
public sealed class CopyDestinationFaultTests : IDisposable
{
    private readonly TempDirectory _dir = new("destination-faults");

    public CopyDestinationFaultTests()
    {
        Home = _dir.Create("home");
        HomeFixture.Write(Home, "plain", "plain\n");
        HomeFixture.Write(Home, "dir/inner", "inner\n");
        HomeFixture.Write(Home, "first", "linked\n");
        HomeFixture.Link(Home, "first", "second");
        HomeFixture.Symlink(Home, "plain", "link");
        HomeFixture.Check(Syscall.mkfifo(Path.Join(Home, "pipe"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
    }

    private string Home { get; }

    private string Copy => _dir["copy"];

    public void Dispose() => _dir.Dispose();

    private (CopyReport Report, List<CopyProblem> Problems) Run(string call, string? name, Errno errno)
    {
        var problems = new List<CopyProblem>();
        var posix = new FaultyPosix((made, named) => made == call && (name is null || named == name) ? errno : null);
        var report = CopyHarness.Copy(Home, Copy, posix, workers: 0, problems: problems);
        return (report, problems);
    }

    private static LossSummary Loss(CopyReport report, LossKind kind) => report.Losses.Summaries().Single(loss => loss.Kind == kind);

    private void AssertCopied(params string[] names)
    {
        foreach (string name in names)
        {
            Assert.True(Path.Exists(Path.Join(Copy, name)) || new FileInfo(Path.Join(Copy, name)).LinkTarget is not null, $"{name} was not copied");
        }
    }

    [Theory]
    [InlineData(Errno.EPERM, "Operation not permitted (EPERM)")]
    [InlineData(Errno.EMLINK, "Too many links (EMLINK)")]
    public void A_refused_hard_link_is_copied_as_a_file_of_its_own_and_counted(Errno errno, string reason)
    {
        var (report, _) = Run("linkat", "second", errno);

        Assert.Null(report.FatalError);
        Assert.Equal("linked\n", File.ReadAllText(Path.Join(Copy, "second")));
        Assert.NotEqual(new Mono.Unix.UnixFileInfo(Path.Join(Copy, "first")).Inode, new Mono.Unix.UnixFileInfo(Path.Join(Copy, "second")).Inode);
        Assert.Equal(new LossSummary(LossKind.HardLinks, 1, "second", $"link to first: {reason}"), Loss(report, LossKind.HardLinks));
        Assert.Equal(0, report.HardLinks);
    }

    [Theory]
    [InlineData("linkat", "second", Errno.ENOSPC, "link second in the workspace: No space left on device (ENOSPC)")]
    [InlineData("create", "plain", Errno.EDQUOT, "create plain in the workspace: Disk quota exceeded (EDQUOT)")]
    [InlineData("symlinkat", "link", Errno.EIO, "create the symlink link in the workspace: Input/output error (EIO)")]
    [InlineData("mkfifoat", "pipe", Errno.EROFS, "create the FIFO pipe in the workspace: Read-only file system (EROFS)")]
    [InlineData("mkdirat", "dir", Errno.EACCES, "create directory dir in the workspace: Permission denied (EACCES)")]
    public void A_full_or_failing_workspace_ends_the_copy_and_says_where(string call, string? name, Errno errno, string fatal)
    {
        var (report, _) = Run(call, name, errno);

        Assert.Equal(fatal, report.FatalError);
    }

    [Fact]
    public void A_name_the_volume_cannot_hold_is_a_loss_and_everything_else_is_copied()
    {
        var (report, problems) = Run("create", "plain", Errno.EINVAL);

        Assert.Null(report.FatalError);
        Assert.False(File.Exists(Path.Join(Copy, "plain")));
        AssertCopied("dir/inner", "first", "second", "link", "pipe");
        Assert.Equal(new LossSummary(LossKind.Names, 1, "plain", "create: Invalid argument (EINVAL)"), Loss(report, LossKind.Names));
        Assert.Empty(problems);
        Assert.Equal(0, report.NotWritten);
    }

    [Fact]
    public void A_file_the_workspace_will_not_take_is_left_out_and_named()
    {
        var (report, problems) = Run("create", "plain", Errno.EACCES);

        Assert.Null(report.FatalError);
        Assert.Equal(1, report.NotWritten);
        Assert.Equal(new CopyProblem(ProblemKind.NotWritten, "plain", "create in the workspace: Permission denied (EACCES); left out"), problems.Single());
        AssertCopied("dir/inner", "first", "link", "pipe");
    }

    [Theory]
    [InlineData(Errno.EOPNOTSUPP, LossKind.Symlinks, "create the symlink: Operation not supported (EOPNOTSUPP)")]
    [InlineData(Errno.ENOSYS, LossKind.Symlinks, "create the symlink: Function not implemented (ENOSYS)")]
    [InlineData(Errno.EINVAL, LossKind.Names, "create the symlink: Invalid argument (EINVAL)")]
    [InlineData(Errno.EPERM, LossKind.Names, "create the symlink: Operation not permitted (EPERM)")]
    public void A_symlink_refused_where_the_probe_made_one_is_a_loss_of_links_or_of_its_name(Errno errno, LossKind kind, string reason)
    {
        var (report, problems) = Run("symlinkat", "link", errno);

        Assert.Null(report.FatalError);
        Assert.Equal(new LossSummary(kind, 1, "link", reason), Loss(report, kind));
        Assert.Empty(problems);
        Assert.Equal(0, report.Symlinks);
    }

    [Fact]
    public void A_symlink_the_workspace_will_not_take_for_another_reason_is_left_out_and_named()
    {
        var (report, problems) = Run("symlinkat", "link", Errno.EACCES);

        Assert.Equal(new CopyProblem(ProblemKind.NotWritten, "link", "create the symlink in the workspace: Permission denied (EACCES); left out"), problems.Single());
        Assert.Equal(0, report.Losses.Total);
    }

    [Theory]
    [InlineData(Errno.EPERM)]
    [InlineData(Errno.EIO)]
    public void A_fifo_the_volume_refuses_is_a_loss_and_what_it_left_in_its_place_is_removed(Errno errno)
    {
        // exfat-fuse answers mknod with EIO and leaves a regular file of that name behind.
        var posix = new FaultyPosix((call, name) =>
        {
            if (call != "mkfifoat" || name != "pipe")
            {
                return null;
            }

            File.WriteAllText(Path.Join(Copy, name!), string.Empty);
            return errno;
        });
        var problems = new List<CopyProblem>();

        var report = CopyHarness.Copy(Home, Copy, posix, workers: 0, problems: problems);

        Assert.Null(report.FatalError);
        Assert.False(Path.Exists(Path.Join(Copy, "pipe")), "a FIFO's copy must not be a regular file");
        Assert.Equal(1, report.Losses[LossKind.Fifos]);
        Assert.StartsWith("mknod: ", Loss(report, LossKind.Fifos).Reason);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_fifo_the_workspace_will_not_take_for_another_reason_is_left_out_and_named()
    {
        var (report, problems) = Run("mkfifoat", "pipe", Errno.EACCES);

        Assert.Equal(new CopyProblem(ProblemKind.NotWritten, "pipe", "create the FIFO in the workspace: Permission denied (EACCES); left out"), problems.Single());
        Assert.Equal(0, report.Fifos);
    }

    [Fact]
    public void A_folder_name_the_volume_cannot_hold_is_a_loss_with_all_it_holds_and_the_rest_is_copied()
    {
        var (report, problems) = Run("mkdirat", "dir", Errno.EINVAL);

        Assert.Null(report.FatalError);
        Assert.False(Path.Exists(Path.Join(Copy, "dir")));
        AssertCopied("plain", "first", "second", "link", "pipe");
        Assert.Equal(1, report.Losses[LossKind.Names]);
        Assert.Empty(problems);
    }
}
