using Microsoft.Extensions.Logging.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The profile step's outcomes on a real workspace: what it writes, when it writes nothing, and whose files they are.</summary>
public sealed class ShellProfileStepTests : IDisposable
{
    private readonly TempDirectory _dir = new("profile-step");

    public ShellProfileStepTests()
    {
        Workspace = _dir.Create("ws");
        Home = _dir.Create("ws/home");
    }

    private string Workspace { get; }

    private string Home { get; }

    private string Bashrc => Path.Join(Home, ".bashrc");

    public void Dispose() => _dir.Dispose();

    private string LiveHome => _dir.Create("live-home");

    private StepResult Run(bool dryRun = false, HomeStatus status = HomeStatus.Seeded)
    {
        var options = new BootOptions { Workspace = Workspace, Home = LiveHome, TerminationLog = _dir["termination-log"], DryRun = dryRun };
        StepResult result;
        var changes = new ChangeLog();
        var posix = new RecordingPosix(changes);
        using (var workspace = DirectoryHandle.Open(posix, Workspace))
        {
            result = Steps.Run(new ShellProfileStep(posix, NullLogger.Instance), new HomeState(workspace, status), options, recorded: changes).Result;
        }

        Assert.Empty(OpenDescriptors.Under(_dir.Path));
        return result;
    }

    private static Stat Lstat(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return stat;
    }

    private static string Variables(StepResult result) => result.Summary[result.Summary.LastIndexOf('(')..];

    [Fact]
    public void A_home_not_yet_seeded_is_left_for_later()
    {
        var result = Run(status: HomeStatus.NotSeeded);

        Assert.Equal(StepResult.Skipped("the home is not seeded yet; the PATH block is added once it is"), result);
        Assert.False(File.Exists(Bashrc));
    }

    [Fact]
    public void A_missing_bashrc_is_created_with_the_block_readable_by_all_and_bin_made()
    {
        var result = Run();

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Equal($"created {Bashrc} with the workspace block {Variables(result)}", result.Summary);
        Assert.Equal(FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH, Lstat(Bashrc).st_mode & FilePermissions.ALLPERMS);
        Assert.True(Directory.Exists(Path.Join(Workspace, "bin")));
    }

    [Fact]
    public void A_second_boot_writes_nothing_and_says_the_block_is_there()
    {
        Run();
        var before = Lstat(Bashrc);

        var result = Run();

        Assert.Equal(StepResult.Ok($"{Bashrc} already has the workspace block"), result);
        Assert.Equal(before.st_ino, Lstat(Bashrc).st_ino);
    }

    [Fact]
    public void A_bin_removed_since_is_made_again_and_the_block_left_as_it_is()
    {
        Run();
        Directory.Delete(Path.Join(Workspace, "bin"));
        var before = Lstat(Bashrc);

        var dryRun = Run(dryRun: true);
        var result = Run();

        Assert.Equal($"would create {Path.Join(Workspace, "bin")}; {Bashrc} already has the workspace block", dryRun.Summary);
        Assert.Equal(StepResult.Ok($"{Bashrc} already has the workspace block"), result);
        Assert.True(Directory.Exists(Path.Join(Workspace, "bin")));
        Assert.Equal(before.st_ino, Lstat(Bashrc).st_ino);
    }

    [Fact]
    public void A_dry_run_for_a_missing_bashrc_says_it_would_create_it()
    {
        Directory.CreateDirectory(Path.Join(Workspace, "bin"));

        var dryRun = Run(dryRun: true);

        Assert.Equal($"would create {Bashrc} with the workspace block {Variables(dryRun)}", dryRun.Summary);
        Assert.False(File.Exists(Bashrc));
    }

    [Fact]
    public void A_bashrc_that_is_not_utf8_but_already_has_the_block_is_fine()
    {
        Run();
        byte[] withLatin1 = [.. File.ReadAllBytes(Bashrc), 0x23, 0x20, 0xe9, 0x0a];
        File.WriteAllBytes(Bashrc, withLatin1);

        var result = Run();

        Assert.Equal(StepResult.Ok($"{Bashrc} already has the workspace block"), result);
        Assert.Equal(withLatin1, File.ReadAllBytes(Bashrc));
    }

    [Fact]
    public void A_bashrc_linked_inside_the_home_is_named_with_its_target()
    {
        HomeFixture.Write(Home, "dotfiles/bashrc", "# managed by stow\n");
        HomeFixture.Symlink(Home, "dotfiles/bashrc", ".bashrc");

        var result = Run();

        Assert.StartsWith($"updated the workspace block in {Bashrc} (a link to {Path.Join(Home, "dotfiles/bashrc")}) (", result.Summary, StringComparison.Ordinal);
        Assert.Contains("# >>> packet-persist >>>", File.ReadAllText(Path.Join(Home, "dotfiles/bashrc")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_symlink_planted_at_bin_is_refused_and_nothing_is_written()
    {
        HomeFixture.Symlink(Workspace, _dir.Create("elsewhere"), "bin");

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains($"{Path.Join(Workspace, "bin")}: it is a symlink", result.Summary, StringComparison.Ordinal);
        Assert.EndsWith("; the PATH block was not written", result.Summary, StringComparison.Ordinal);
        Assert.False(File.Exists(Bashrc));
    }

    [RootFact]
    public void A_new_bashrc_is_the_homes_owners_and_the_state_folder_stays_roots()
    {
        Require.Root();
        HomeFixture.Check(Syscall.chown(Home, Platform.StrangerUid, Platform.StrangerGid));
        Directory.CreateDirectory(Path.Join(Workspace, ".packet"));
        Directory.CreateDirectory(Path.Join(Workspace, "bin"));
        Run();

        var result = Run();

        var state = Lstat(Path.Join(Workspace, ".packet"));
        var bashrc = Lstat(Bashrc);
        Assert.Equal((0u, 0u), (state.st_uid, state.st_gid));
        Assert.Equal((Platform.StrangerUid, Platform.StrangerGid), (bashrc.st_uid, bashrc.st_gid));
        Assert.Equal(StepResult.Ok($"{Bashrc} already has the workspace block"), result);
    }

    [RootFact]
    public void A_bashrc_that_is_another_name_of_another_accounts_file_is_left_as_it_is_and_the_block_is_shown()
    {
        Require.Root();
        HomeFixture.Check(Syscall.chown(Home, Platform.StrangerUid, Platform.StrangerGid));
        string roots = Path.Join(Workspace, "roots-file");
        File.WriteAllText(roots, "root's lines\n");
        HomeFixture.Chmod(Workspace, "roots-file", "600");
        HomeFixture.Check(Syscall.link(roots, Bashrc));

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.StartsWith($"{Bashrc} has 2 names and belongs to uid 0, not the home's uid {Platform.StrangerUid}; left as it is. Replace it with a file of your own (cp --remove-destination), or add the block yourself:\n", result.Summary, StringComparison.Ordinal);
        Assert.Equal("root's lines\n", File.ReadAllText(roots));
        Assert.Equal(2ul, Lstat(Bashrc).st_nlink);
    }

    [RootFact]
    public void A_bashrc_of_the_home_owners_own_with_another_name_gets_the_block()
    {
        Require.Root();
        HomeFixture.Check(Syscall.chown(Home, Platform.StrangerUid, Platform.StrangerGid));
        File.WriteAllText(Bashrc, "# mine\n");
        HomeFixture.Check(Syscall.chown(Bashrc, Platform.StrangerUid, Platform.StrangerGid));
        HomeFixture.Check(Syscall.link(Bashrc, Path.Join(Home, "bashrc.backup")));

        var result = Run();

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith("# mine\n", File.ReadAllText(Bashrc), StringComparison.Ordinal);
        Assert.Contains("/bin", File.ReadAllText(Bashrc), StringComparison.Ordinal);
    }

    [RootFact]
    public void The_profile_step_gives_nothing_of_the_state_folder_away()
    {
        Require.Root();
        Directory.CreateDirectory(Path.Join(Workspace, ".packet"));
        HomeFixture.Check(Syscall.chown(Path.Join(Workspace, ".packet"), Platform.StrangerUid, Platform.StrangerGid));
        HomeFixture.Check(Syscall.chown(Home, Platform.StrangerUid, Platform.StrangerGid));

        Run();

        Assert.Equal(Platform.StrangerUid, Lstat(Path.Join(Workspace, ".packet")).st_uid);
        Assert.False(Directory.Exists(Path.Join(Workspace, ".packet", $"user-{Platform.StrangerUid}")));
    }

    [RootFact]
    public void Bin_is_made_for_the_homes_account_from_the_image_not_for_the_owner_of_the_persisted_home()
    {
        Require.Root();
        HomeFixture.Check(Syscall.chown(LiveHome, Platform.StrangerUid, Platform.StrangerGid));
        HomeFixture.Check(Syscall.chown(Home, Platform.StrangerUid + 1, Platform.StrangerGid + 1));

        Run();

        Assert.Equal((Platform.StrangerUid, Platform.StrangerGid), (Lstat(Path.Join(Workspace, "bin")).st_uid, Lstat(Path.Join(Workspace, "bin")).st_gid));
        Assert.False(Directory.Exists(Path.Join(Workspace, ".packet")));
    }

    [RootFact]
    public void The_block_shows_roots_banner_and_the_home_users_own()
    {
        Require.Root();
        HomeFixture.Check(Syscall.chown(LiveHome, Platform.StrangerUid, Platform.StrangerGid));

        Run();

        string bashrc = File.ReadAllText(Bashrc);
        Assert.Contains($"[ -s \"{Workspace}/.packet/last-boot.warnings\" ]", bashrc, StringComparison.Ordinal);
        Assert.Contains($"[ -s \"{Workspace}/.packet/user-{Platform.StrangerUid}/last-boot.warnings\" ]", bashrc, StringComparison.Ordinal);
    }
}
