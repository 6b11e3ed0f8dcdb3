using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// A source that changes while it is copied, and a destination that changes under the copier: no
/// hang, no crash, never a write through a planted symlink; each entry copied consistently or reported.
/// </summary>
public sealed class HostileSourceTests : IDisposable
{
    private readonly TempDirectory _dir = new("hostile");

    public HostileSourceTests()
    {
        Home = _dir.Create("home");
        Outside = _dir.Create("outside");
    }

    private string Home { get; }

    private string Outside { get; }

    public void Dispose() => _dir.Dispose();

    private static Action<string> Once(string name, Action swap)
    {
        int done = 0;
        return opened =>
        {
            if (opened == name && Interlocked.Exchange(ref done, 1) == 0)
            {
                swap();
            }
        };
    }

    [Fact]
    public async Task A_file_replaced_by_a_FIFO_after_listing_is_recreated_as_a_FIFO_without_blocking()
    {
        HomeFixture.Write(Home, "becomes-fifo", "data");
        string path = Path.Join(Home, "becomes-fifo");
        var posix = new FaultyPosix { BeforeOpen = Once("becomes-fifo", () => { File.Delete(path); HomeFixture.Check(Syscall.mkfifo(path, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR)); }) };

        var report = await Task.Run(() => CopyHarness.Copy(Home, _dir["copy"], posix)).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(1, report.Fifos);
        Assert.Equal(FilePermissions.S_IFIFO, TreeSnapshot.Take(_dir["copy"])["becomes-fifo"].Type);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_entry_that_is_a_link_whenever_it_is_opened_and_a_file_whenever_it_is_looked_at_is_given_up_after_two_tries(bool listingsWithoutTypes)
    {
        HomeFixture.Write(Home, "flipping", "data");
        HomeFixture.Write(Home, "steady", "steady");
        string path = Path.Join(Home, "flipping");
        void Become(bool link)
        {
            File.Delete(path);
            if (link)
            {
                File.CreateSymbolicLink(path, "steady");
            }
            else
            {
                File.WriteAllText(path, "data");
            }
        }

        int opens = 0;
        var posix = new FaultyPosix((call, name) =>
        {
            if (call == "lstatat" && name == "flipping")
            {
                Become(link: false);
            }

            return null;
        })
        {
            UnknownTypes = listingsWithoutTypes,
            BeforeOpen = name =>
            {
                if (name == "flipping")
                {
                    opens++;
                    Become(link: true);
                }
            },
        };
        var problems = new List<CopyProblem>();

        var report = CopyHarness.Copy(Home, _dir["copy"], posix, workers: 0, problems: problems);

        Assert.Equal(new CopyProblem(ProblemKind.ChangedDuringCopy, "flipping", "kept changing type while being copied; left out"), problems.Single());
        Assert.Equal(1, report.ChangedDuringCopy);
        Assert.Equal(2, opens);
        Assert.False(Path.Exists(Path.Join(_dir["copy"], "flipping")) || File.Exists(Path.Join(_dir["copy"], "flipping")));
        Assert.Equal("steady", File.ReadAllText(Path.Join(_dir["copy"], "steady")));
    }

    [Fact]
    public void A_file_replaced_by_a_folder_after_listing_is_left_out_and_named()
    {
        HomeFixture.Write(Home, "becomes-dir", "data");
        string path = Path.Join(Home, "becomes-dir");
        var posix = new FaultyPosix { BeforeOpen = Once("becomes-dir", () => { File.Delete(path); HomeFixture.Write(Home, "becomes-dir/inside", "x"); }) };
        var problems = new List<CopyProblem>();

        var report = CopyHarness.Copy(Home, _dir["copy"], posix, workers: 0, problems: problems);

        Assert.Equal(new CopyProblem(ProblemKind.ChangedDuringCopy, "becomes-dir", "became a directory while being copied; left out"), problems.Single());
        Assert.Equal(1, report.ChangedDuringCopy);
        Assert.False(Path.Exists(Path.Join(_dir["copy"], "becomes-dir")));
    }

    [Fact]
    public void A_file_replaced_by_a_symlink_after_listing_is_copied_as_the_symlink_never_followed()
    {
        HomeFixture.Write(Home, "becomes-link", "data");
        HomeFixture.Write(Outside, "secret", "outside data");
        string path = Path.Join(Home, "becomes-link");
        var posix = new FaultyPosix { BeforeOpen = Once("becomes-link", () => { File.Delete(path); File.CreateSymbolicLink(path, Path.Join(Outside, "secret")); }) };

        var report = CopyHarness.Copy(Home, _dir["copy"], posix);

        Assert.Equal(1, report.Symlinks);
        Assert.Equal(Path.Join(Outside, "secret"), new FileInfo(Path.Join(_dir["copy"], "becomes-link")).LinkTarget);
    }

    [Fact]
    public void A_file_that_shrinks_while_copied_is_copied_as_it_is_then_and_reported()
    {
        HomeFixture.Write(Home, "log.txt", new string('x', 100_000));
        var problems = new List<CopyProblem>();
        var posix = new FaultyPosix { BeforeCopy = () => File.WriteAllText(Path.Join(Home, "log.txt"), "short") };

        var report = CopyHarness.Copy(Home, _dir["copy"], posix, workers: 0, problems: problems);

        Assert.Equal("short", File.ReadAllText(Path.Join(_dir["copy"], "log.txt")));
        var problem = Assert.Single(problems);
        Assert.Equal(ProblemKind.ChangedDuringCopy, problem.Kind);
        Assert.Contains("shrank from 100000 to 5 bytes", problem.Detail);
        Assert.Null(report.FatalError);
    }

    [Fact]
    public async Task A_file_that_grows_while_copied_is_copied_up_to_the_size_it_had_without_chasing_it()
    {
        HomeFixture.Write(Home, "growing.log", new string('a', 50_000));
        var posix = new FaultyPosix { BeforeCopy = () => File.AppendAllText(Path.Join(Home, "growing.log"), new string('b', 1_000_000)) };

        await Task.Run(() => CopyHarness.Copy(Home, _dir["copy"], posix, workers: 0)).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(new string('a', 50_000), File.ReadAllText(Path.Join(_dir["copy"], "growing.log")));
    }

    [Fact]
    public void A_file_deleted_after_listing_is_reported_as_vanished()
    {
        HomeFixture.Write(Home, "temp", "x");
        HomeFixture.Write(Home, "kept", "y");
        var problems = new List<CopyProblem>();
        var posix = new FaultyPosix { BeforeOpen = Once("temp", () => File.Delete(Path.Join(Home, "temp"))) };

        var report = CopyHarness.Copy(Home, _dir["copy"], posix, problems: problems);

        Assert.Equal(1, report.ChangedDuringCopy);
        Assert.Equal("vanished while being copied", Assert.Single(problems).Detail);
        Assert.True(File.Exists(Path.Join(_dir["copy"], "kept")));
    }

    [Fact]
    public void A_directory_of_an_existing_home_swapped_for_a_symlink_just_before_it_is_opened_is_not_followed()
    {
        HomeFixture.Write(Home, ".config/app.conf", "image");
        HomeFixture.Write(Home, ".config/new.conf", "image new");
        string existing = _dir.Create("existing");
        HomeFixture.Write(existing, ".config/app.conf", "user");
        var posix = new FaultyPosix
        {
            BeforeOpen = Once(".config", () =>
            {
                Directory.Move(Path.Join(existing, ".config"), Path.Join(existing, ".config-moved"));
                File.CreateSymbolicLink(Path.Join(existing, ".config"), Outside);
            }),
        };

        CopyHarness.Copy(Home, _dir["staging"], posix, existing: existing);

        Assert.Empty(Directory.GetFileSystemEntries(Outside));
    }
}
