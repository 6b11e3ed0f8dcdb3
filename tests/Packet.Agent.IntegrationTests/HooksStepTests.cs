using System.Collections;
using Microsoft.Extensions.Logging.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Hooks;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The hooks step's decisions (what runs, in which order, what is remembered) on a real workspace, with a recording runner.</summary>
public sealed class HooksStepTests : IDisposable
{
    private readonly TempDirectory _dir = new("hooks");
    private readonly RecordingRunner _runner = new();
    private readonly ListLoggerProvider _log = new();
    private readonly ChangeLog _changes = new();

    public HooksStepTests()
    {
        Workspace = _dir.Create("workspace");
        Directory.CreateDirectory(Path.Join(Workspace, "home"));
    }

    private string Workspace { get; }

    public void Dispose() => _dir.Dispose();

    private StepResult Run(bool dryRun = false, string path = "/usr/bin:/bin", FaultyPosix? posix = null, StopRequest? stop = null, Hashtable? environment = null)
    {
        var recording = new RecordingPosix(_changes, posix);
        var step = new HooksStep(recording, new RecordingHookRunner(_changes, _runner), Resolver(), new ProgramTrust(recording), _log.CreateLogger("hooks"), () => environment ?? new Hashtable { ["PATH"] = path });
        using var workspace = DirectoryHandle.Open(recording, Workspace);
        return Steps.Run(step, new HomeState(workspace, HomeStatus.Seeded), Options(dryRun), stop, _changes).Result;
    }

    private static CommandResolver Resolver() =>
        new(new System.IO.Abstractions.FileSystem(), path => Syscall.access(path, AccessModes.X_OK) == 0);

    /// <summary>The image's home (--home): its owner is the hooks' account.</summary>
    private string LiveHome => _dir.Create("live-home");

    private BootOptions Options(bool dryRun) =>
        new() { Workspace = Workspace, Home = LiveHome, TerminationLog = _dir["termination-log"], HookTimeout = TimeSpan.FromSeconds(7), DryRun = dryRun };

    /// <summary>The image's home and the persisted one given to a user: the hooks' account is theirs.</summary>
    private void HomesOf(uint uid, uint gid)
    {
        ChildProcess.MustSucceed("chown", $"{uid}:{gid}", LiveHome);
        ChildProcess.MustSucceed("chown", $"{uid}:{gid}", Path.Join(Workspace, "home"));
    }

    private void Hook(string folder, string name, string body = "exit 0", string mode = "755") =>
        HomeFixture.Write(Workspace, $".packet/{folder}/{name}", "#!/bin/sh\n" + body + "\n", mode);

    [Fact]
    public void Without_hooks_the_step_is_skipped_and_the_hook_folders_are_made_for_the_user()
    {
        var result = Run();

        Assert.Equal(StepOutcome.Skipped, result.Outcome);
        Assert.Empty(_runner.Runs);
        Assert.True(Directory.Exists(Path.Join(Workspace, ".packet/boot.d")));
        Assert.True(Directory.Exists(Path.Join(Workspace, ".packet/first-boot.d")));
    }

    [Fact]
    public void Setup_then_first_boot_then_boot_hooks_run_in_lexical_order_with_the_timeout()
    {
        HomeFixture.Write(Workspace, "setup.sh", "#!/bin/sh\n", mode: "755");
        Hook("boot.d", "20-b");
        Hook("boot.d", "10-a");
        Hook("first-boot.d", "50-once");

        var result = Run();

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Equal(["setup.sh", "first-boot.d/50-once", "boot.d/10-a", "boot.d/20-b"], _runner.Runs.Select(r => r.Hook.Name));
        Assert.All(_runner.Runs, r => Assert.Equal(TimeSpan.FromSeconds(7), r.Timeout));
        Assert.All(_runner.Runs, r => Assert.Equal(Workspace, r.WorkingDirectory));
    }

    [Fact]
    public void A_setup_script_without_its_execute_bit_still_runs_through_the_shell()
    {
        HomeFixture.Write(Workspace, "setup.sh", "echo hi\n", mode: "644");

        Run();

        var run = Assert.Single(_runner.Runs);
        Assert.Equal("/bin/bash", run.Hook.Program);
        Assert.Equal([Path.Join(Workspace, "setup.sh")], run.Hook.Arguments);
    }

    [Fact]
    public void Hooks_dry_run_and_run_come_from_the_same_decision()
    {
        HomeFixture.Write(Workspace, "setup.sh", "#!/bin/sh\n", mode: "755");
        Hook("first-boot.d", "50-once");
        Hook("boot.d", "10-a");
        Hook("boot.d", "README.md", mode: "644");
        var recording = new RecordingPosix(_changes);
        var step = new HooksStep(recording, new RecordingHookRunner(_changes, _runner), Resolver(), new ProgramTrust(recording), NullLogger.Instance, () => new Hashtable { ["PATH"] = "/usr/bin:/bin" });
        using var workspace = DirectoryHandle.Open(recording, Workspace);

        var (dryRun, _, run, _) = Steps.DryRunThenRun(step, () => new HomeState(workspace, HomeStatus.Seeded), Options(dryRun: false), _dir.Path, recorded: _changes);

        Assert.Equal("would run: setup.sh, first-boot.d/50-once, boot.d/10-a", dryRun.Summary);
        Assert.Equal(["setup.sh", "first-boot.d/50-once", "boot.d/10-a"], _runner.Runs.Select(r => r.Hook.Name));
        Assert.Equal("3 hooks ran", run.Summary);
    }

    [Fact]
    public void Non_executables_and_editor_leftovers_in_a_hook_folder_do_not_run()
    {
        Hook("boot.d", "10-run");
        Hook("boot.d", "20-not-executable", mode: "644");
        Hook("boot.d", "30-backup~");
        Hook("boot.d", ".hidden");

        Run();

        Assert.Equal(["boot.d/10-run"], _runner.Runs.Select(r => r.Hook.Name));
    }

    [Fact]
    public void A_first_boot_hook_runs_until_it_succeeds_then_again_only_when_edited()
    {
        Hook("first-boot.d", "10-install");
        _runner.Fail("first-boot.d/10-install");

        var failed = Run();
        _runner.Succeed("first-boot.d/10-install");
        Run();
        Run();
        Hook("first-boot.d", "10-install", "echo edited");
        Run();

        Assert.Equal(StepOutcome.Warning, failed.Outcome);
        Assert.Contains("first-boot.d/10-install exited with code 3", failed.Summary);
        Assert.Contains("/.packet/logs/first-boot.d-10-install.log", failed.Summary);
        Assert.Equal(3, _runner.Runs.Count(r => r.Hook.Name == "first-boot.d/10-install"));
    }

    [Fact]
    public void Boot_hooks_run_every_boot_and_one_failure_does_not_stop_the_others()
    {
        Hook("boot.d", "10-fails");
        Hook("boot.d", "20-runs");
        _runner.Fail("boot.d/10-fails");

        var first = Run();
        Run();

        Assert.Equal(StepOutcome.Warning, first.Outcome);
        Assert.Equal(2, _runner.Runs.Count(r => r.Hook.Name == "boot.d/20-runs"));
    }

    [Fact]
    public void Requirements_are_installed_into_the_venv_only_when_they_change()
    {
        HomeFixture.Write(Workspace, "requirements.txt", "numpy==2.0\n");
        // The recording runner does not run python: it makes the venv's python appear as the real one would.
        _runner.OnRun = run =>
        {
            if (run.Hook.Name == "venv")
            {
                HomeFixture.Write(Workspace, "venv/bin/python", string.Empty, mode: "755");
            }
        };

        Run();
        Run();
        HomeFixture.Write(Workspace, "requirements.txt", "numpy==2.1\n");
        Run();

        Assert.Equal(["venv", "requirements.txt", "requirements.txt"], _runner.Runs.Select(r => r.Hook.Name));
        var venv = _runner.Runs[0];
        Assert.Equal(["-m", "venv", "--system-site-packages", Path.Join(Workspace, "venv")], venv.Hook.Arguments);
        var pip = _runner.Runs[1];
        Assert.Equal(Path.Join(Workspace, "venv/bin/python"), pip.Hook.Program);
        Assert.Equal(["-m", "pip", "install", "--requirement", Path.Join(Workspace, "requirements.txt")], pip.Hook.Arguments);
        Assert.Equal(Path.Join(Workspace, ".cache/pip"), pip.Environment["PIP_CACHE_DIR"]);
        Assert.StartsWith(Path.Join(Workspace, "venv/bin") + ":" + Path.Join(Workspace, "bin") + ":", pip.Environment["PATH"]);
    }

    [Fact]
    public void A_failed_install_is_tried_again_next_boot()
    {
        HomeFixture.Write(Workspace, "requirements.txt", "torch\n");
        HomeFixture.Write(Workspace, "venv/bin/python", string.Empty, mode: "755");
        _runner.Fail("requirements.txt");

        Assert.Equal(StepOutcome.Warning, Run().Outcome);
        Run();

        Assert.Equal(2, _runner.Runs.Count(r => r.Hook.Name == "requirements.txt"));
    }

    [RootFact]
    public void Hooks_run_as_the_homes_account_from_the_image_and_their_folders_are_made_for_it()
    {
        Require.Root();
        HomesOf(Platform.StrangerUid, Platform.StrangerGid);
        Hook("boot.d", "10-a");

        Run();

        Assert.Equal(new HookIdentity(Platform.StrangerUid, Platform.StrangerGid), Assert.Single(_runner.Runs).Identity);
        Assert.Equal(Platform.StrangerUid, new Mono.Unix.UnixFileInfo(Path.Join(Workspace, ".packet/first-boot.d")).OwnerUserId); // made by the agent, for the user
        Assert.Equal(0, (int)new Mono.Unix.UnixFileInfo(Path.Join(Workspace, ".packet")).OwnerUserId);
    }

    [RootFact]
    public void A_persisted_home_another_account_owns_runs_no_hooks_and_says_how_to_fix_it()
    {
        Require.Root();
        // A user of the volume who renamed a root-owned folder to home (lost+found, say) must not get root's hooks.
        ChildProcess.MustSucceed("chown", $"{Platform.StrangerUid}:{Platform.StrangerGid}", LiveHome);
        Hook("boot.d", "10-a");
        HomeFixture.Write(Workspace, "setup.sh", "#!/bin/sh\n", mode: "755");

        var result = Run();

        Assert.Empty(_runner.Runs);
        Assert.Equal(
            StepResult.Problem($"hooks not run: {Workspace}/home belongs to uid 0, but the hooks' account is uid {Platform.StrangerUid} (the owner of {LiveHome} in the image); "
                + "a user of the volume can rename or link any folder to home, so hooks never take their account from it. "
                + $"If the home is right, give it to its account: chown -R {Platform.StrangerUid}:{Platform.StrangerGid} {Workspace}/home; if the account is wrong, name the right one: --user 0"),
            result);
    }

    [Fact]
    public void One_hook_or_several_are_counted_in_the_summary()
    {
        Hook("boot.d", "10-a");
        Hook("first-boot.d", "10-once");

        Assert.Equal("2 hooks ran", Run().Summary);
        Hook("boot.d", "20-b");
        Assert.Equal("2 hooks ran", Run().Summary);
    }

    [Fact]
    public void Hook_folders_the_step_makes_are_named_in_the_dry_run_and_the_summary()
    {
        Hook("boot.d", "10-a");
        string firstBoot = Path.Join(Workspace, ".packet", "first-boot.d");

        var preview = Run(dryRun: true);
        var run = Run();

        Assert.Equal($"would run: boot.d/10-a, and would create {firstBoot} for uid {Syscall.geteuid()}", preview.Summary);
        Assert.Equal($"1 hook ran; created {firstBoot} for uid {Syscall.geteuid()}", run.Summary);
        Assert.True(Directory.Exists(firstBoot));
    }

    [Fact]
    public void A_dry_run_names_every_hook_it_would_run_and_runs_none()
    {
        Hook("boot.d", "10-a");
        Hook("first-boot.d", "10-once");
        HomeFixture.Write(Workspace, "requirements.txt", "numpy\n");

        var preview = Run(dryRun: true);

        Assert.Equal("would run: first-boot.d/10-once, boot.d/10-a, create the venv, pip install -r requirements.txt", preview.Summary);
        Assert.Empty(_runner.Runs);
    }

    [Theory]
    [InlineData("700")]
    [InlineData("670")]
    [InlineData("705")]
    public void A_hook_executable_by_anyone_runs_as_its_user(string mode)
    {
        Require.Root();
        HomesOf(Platform.StrangerUid, Platform.StrangerGid);
        Hook("boot.d", "10-a", mode: mode);

        Run();

        Assert.Equal(["boot.d/10-a"], _runner.Runs.Select(r => r.Hook.Name));
    }

    [Theory]
    [InlineData("607", "everyone")]
    [InlineData("670", "its group (gid 0)")]
    public void A_hook_others_may_write_is_not_run_as_root(string mode, string writers)
    {
        Hook("boot.d", "10-a", mode: mode);
        Hook("boot.d", "20-b");

        var result = Run();

        Assert.Equal(["boot.d/20-b"], _runner.Runs.Select(r => r.Hook.Name));
        Assert.Equal(
            StepResult.Problem($"boot.d/10-a not run as root: {Workspace}/.packet/boot.d/10-a is writable by {writers} (mode 0{mode}); root runs nothing another account could have changed "
                + "(make it and the folders above it root's, writable by root alone, or run hooks as a user: --user)"),
            result);
    }

    [RootFact]
    public void A_hook_folder_or_a_hook_of_a_third_account_runs_nothing_as_the_homes_account()
    {
        Require.Root();
        HomesOf(Platform.StrangerUid, Platform.StrangerGid);
        Hook("first-boot.d", "10-third");
        Hook("boot.d", "10-third");
        Hook("boot.d", "20-root");
        HomeFixture.Write(Workspace, "setup.sh", "#!/bin/sh\n", mode: "755");
        ChildProcess.MustSucceed("chown", "-R", "2000:2000", Path.Join(Workspace, ".packet/first-boot.d"));
        ChildProcess.MustSucceed("chown", "2000:2000", Path.Join(Workspace, ".packet/boot.d/10-third"), Path.Join(Workspace, "setup.sh"));

        var result = Run();

        Assert.Equal(["boot.d/20-root"], _runner.Runs.Select(r => r.Hook.Name));
        Assert.Equal(StepOutcome.Warning, result.Outcome);
        string fix = "and hooks run only what their own account or root wrote; fix: chown 4242";
        Assert.Contains($"{Workspace}/setup.sh not run as uid 4242: {Workspace}/setup.sh belongs to uid 2000, {fix} {Workspace}/setup.sh", result.Summary, StringComparison.Ordinal);
        Assert.Contains($"the hooks in {Workspace}/.packet/first-boot.d not run as uid 4242: {Workspace}/.packet/first-boot.d belongs to uid 2000, {fix}", result.Summary, StringComparison.Ordinal);
        Assert.Contains($"boot.d/10-third not run as uid 4242: {Workspace}/.packet/boot.d/10-third belongs to uid 2000", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_hook_anyone_may_write_does_not_run_as_the_homes_account()
    {
        Require.Root();
        HomesOf(Platform.StrangerUid, Platform.StrangerGid);
        Hook("boot.d", "10-open", mode: "757");
        Hook("boot.d", "20-closed", mode: "775");

        var result = Run();

        Assert.Equal(["boot.d/20-closed"], _runner.Runs.Select(r => r.Hook.Name));
        Assert.Contains($"boot.d/10-open not run as uid 4242: anyone may write {Workspace}/.packet/boot.d/10-open (mode 0757)", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void A_hook_whose_name_cannot_be_passed_on_or_logged_is_skipped_by_name_and_the_others_run()
    {
        Hook("boot.d", "10-" + HomeFixture.NonUtf8Name);
        Hook("boot.d", "20-" + new string('n', 201));
        Hook("boot.d", "30-" + new string('n', 197));

        var result = Run();

        Assert.Equal(["boot.d/30-" + new string('n', 197)], _runner.Runs.Select(r => r.Hook.Name));
        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Contains(_log.Lines, m => m.StartsWith("Information: skipped boot.d/10-bad-", StringComparison.Ordinal) && m.EndsWith(": its name is not UTF-8, and a hook's path is passed on as UTF-8; rename it", StringComparison.Ordinal));
        Assert.Contains($"Information: skipped boot.d/20-{new string('n', 201)}: its name is longer than 200 bytes, too long for its log's; rename it", _log.Lines);
    }

    [Fact]
    public void Root_runs_no_pip_on_requirements_another_account_could_change()
    {
        Require.Root();
        HomeFixture.Write(Workspace, "requirements.txt", "-e /somewhere/else\n");
        HomeFixture.Write(Workspace, "venv/bin/python", string.Empty, mode: "755");
        ChildProcess.MustSucceed("chown", "1000:1000", Path.Join(Workspace, "requirements.txt"));

        var result = Run();

        Assert.Empty(_runner.Runs);
        Assert.Contains($"pip install -r requirements.txt not run as root: {Workspace}/requirements.txt belongs to uid 1000, not root", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Root_makes_no_venv_in_a_venv_folder_another_account_owns_even_without_a_python()
    {
        Require.Root();
        HomeFixture.Write(Workspace, "requirements.txt", "numpy\n");
        Directory.CreateDirectory(Path.Join(Workspace, "venv/bin"));
        ChildProcess.MustSucceed("chown", "1000:1000", Path.Join(Workspace, "venv/bin"));

        var result = Run();

        Assert.Empty(_runner.Runs);
        Assert.Contains($"pip install -r requirements.txt not run as root: {Workspace}/venv/bin belongs to uid 1000, not root", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void A_root_hook_keeps_no_pip_cache_and_loads_no_library_where_another_account_could_put_one()
    {
        Hook("boot.d", "10-a");
        string shared = _dir.Create("shared-lib");
        HomeFixture.Check(Syscall.chmod(shared, FilePermissions.ACCESSPERMS));
        Directory.CreateDirectory(Path.Join(Workspace, ".cache"));
        HomeFixture.Check(Syscall.chmod(Path.Join(Workspace, ".cache"), FilePermissions.ACCESSPERMS));
        Run(environment: new Hashtable { ["PATH"] = "/usr/bin", ["LD_LIBRARY_PATH"] = $"{shared}:/usr/lib", ["LD_PRELOAD"] = $"{shared}/evil.so /usr/lib/ok.so" });

        var environment = Assert.Single(_runner.Runs).Environment;
        Assert.Equal("/usr/lib", environment["LD_LIBRARY_PATH"]);
        Assert.Equal("/usr/lib/ok.so", environment["LD_PRELOAD"]);
        Assert.False(environment.ContainsKey("PIP_CACHE_DIR"));
        Assert.Equal("1", environment["PIP_NO_CACHE_DIR"]);
    }

    [Fact]
    public void A_root_hooks_pip_cache_stays_on_a_volume_only_root_can_change()
    {
        Hook("boot.d", "10-a");

        Run();

        var environment = Assert.Single(_runner.Runs).Environment;
        Assert.Equal(Path.Join(Workspace, ".cache/pip"), environment["PIP_CACHE_DIR"]);
        Assert.False(environment.ContainsKey("PIP_NO_CACHE_DIR"));
    }

    [Fact]
    public void A_hook_folder_others_may_write_runs_nothing_as_root()
    {
        Hook("boot.d", "10-a");
        HomeFixture.Check(Syscall.chmod(Path.Join(Workspace, ".packet/boot.d"), FilePermissions.ACCESSPERMS));
        HomeFixture.Write(Workspace, "setup.sh", "#!/bin/sh\n", mode: "755");
        HomeFixture.Check(Syscall.chmod(Workspace, FilePermissions.S_IRWXU | FilePermissions.S_IRWXG | FilePermissions.S_IROTH | FilePermissions.S_IXOTH));

        var result = Run();

        Assert.Empty(_runner.Runs);
        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains($"setup.sh not run as root: {Workspace} is writable by its group (gid 0) (mode 0775), who could put anything there", result.Summary, StringComparison.Ordinal);
        Assert.Contains($"boot.d/10-a not run as root: {Workspace} is writable by its group (gid 0) (mode 0775)", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void A_root_hooks_path_keeps_only_folders_no_other_account_can_change()
    {
        Hook("boot.d", "10-a");
        string shared = _dir.Create("shared-bin");
        HomeFixture.Check(Syscall.chmod(shared, FilePermissions.ACCESSPERMS));
        Directory.CreateDirectory(Path.Join(Workspace, "bin"));

        var result = Run(path: $"{shared}:/usr/bin:/bin");

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Equal($"{Workspace}/bin:/usr/bin:/bin", Assert.Single(_runner.Runs).Environment["PATH"]);
    }

    [Fact]
    public void What_does_not_run_in_a_hook_folder_is_logged_by_name_and_a_link_is_not_followed()
    {
        Hook("boot.d", "10-run");
        Hook("boot.d", "20-plain", mode: "644");
        HomeFixture.Write(_dir.Path, "elsewhere", "#!/bin/sh\nexit 0\n", "755");
        HomeFixture.Symlink(Path.Join(Workspace, ".packet/boot.d"), _dir["elsewhere"], "30-link");
        Directory.CreateDirectory(Path.Join(Workspace, ".packet/boot.d/40-dir"));

        Run();

        Assert.Equal(["boot.d/10-run"], _runner.Runs.Select(r => r.Hook.Name));
        foreach (string name in new[] { "20-plain", "30-link", "40-dir" })
        {
            Assert.Contains($"Information: skipped boot.d/{name}: not an executable regular file", _log.Lines);
        }
    }

    [Fact]
    public void A_setup_script_that_is_a_link_or_a_folder_does_not_run()
    {
        HomeFixture.Write(_dir.Path, "elsewhere.sh", "#!/bin/sh\nexit 0\n", "755");
        HomeFixture.Symlink(Workspace, _dir["elsewhere.sh"], "setup.sh");

        Run();
        File.Delete(Path.Join(Workspace, "setup.sh"));
        Directory.CreateDirectory(Path.Join(Workspace, "setup.sh"));
        Run();

        Assert.Empty(_runner.Runs);
    }

    [Fact]
    public void An_executable_setup_script_runs_itself()
    {
        HomeFixture.Write(Workspace, "setup.sh", "#!/bin/sh\nexit 0\n", "755");

        Run();

        var run = Assert.Single(_runner.Runs);
        Assert.Equal((Path.Join(Workspace, "setup.sh"), 0), (run.Hook.Program, run.Hook.Arguments.Count));
    }

    [Fact]
    public void Requirements_unchanged_since_the_last_install_are_noted_and_pip_is_not_run()
    {
        HomeFixture.Write(Workspace, "requirements.txt", "numpy\n");
        HomeFixture.Write(Workspace, "venv/bin/python", string.Empty, mode: "755");
        Run();
        _log.Lines.Clear();

        var second = Run();

        Assert.Single(_runner.Runs);
        Assert.Equal(StepOutcome.Skipped, second.Outcome);
        Assert.Contains($"Information: {Path.Join(Workspace, "requirements.txt")} unchanged since the last install; pip not run", _log.Lines);
    }

    [Fact]
    public void Without_python3_nothing_is_installed_and_the_step_says_why()
    {
        HomeFixture.Write(Workspace, "requirements.txt", "numpy\n");
        Hook("boot.d", "10-a");

        var result = Run(path: _dir.Create("empty-bin"));

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.StartsWith($"{Path.Join(Workspace, "requirements.txt")} is there but python3 is not (", result.Summary);
        Assert.EndsWith("); nothing was installed", result.Summary);
        Assert.Equal(["boot.d/10-a"], _runner.Runs.Select(r => r.Hook.Name));
    }

    [Fact]
    public void A_venv_that_could_not_be_made_is_not_installed_into_and_is_tried_again_next_boot()
    {
        HomeFixture.Write(Workspace, "requirements.txt", "numpy\n");
        Hook("boot.d", "10-after");
        _runner.Fail("venv");

        var failed = Run();
        _runner.Succeed("venv");
        _runner.OnRun = run =>
        {
            if (run.Hook.Name == "venv")
            {
                HomeFixture.Write(Workspace, "venv/bin/python", string.Empty, mode: "755");
            }
        };
        Run();

        Assert.Equal(StepOutcome.Warning, failed.Outcome);
        Assert.StartsWith("venv exited with code 3 (log: ", failed.Summary);
        Assert.Equal(["boot.d/10-after", "venv", "boot.d/10-after", "venv", "requirements.txt"], _runner.Runs.Select(r => r.Hook.Name));
    }

    [Fact]
    public void A_stop_request_ends_the_step_before_the_next_hook()
    {
        Hook("boot.d", "10-a");
        Hook("boot.d", "20-b");
        using var stop = new StopRequest();
        _runner.OnRun = _ => stop.Request(15);

        Run(stop: stop);

        Assert.Equal(["boot.d/10-a"], _runner.Runs.Select(r => r.Hook.Name));
    }

    [Fact]
    public void Each_hook_writes_a_fresh_log_readable_by_all()
    {
        Hook("boot.d", "10-a");
        HomeFixture.Write(Workspace, ".packet/logs/boot.d-10-a.log", "an older boot's output\n", "600");
        _runner.OnRun = run => Assert.Equal(0, new FileInfo(Path.Join(Workspace, ".packet/logs/boot.d-10-a.log")).Length);

        Run();

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(Path.Join(Workspace, ".packet/logs/boot.d-10-a.log")));
        Assert.Single(_runner.Runs);
    }

    [RootFact]
    public void A_persisted_home_that_is_a_link_runs_no_hooks_whoever_owns_it()
    {
        Require.Root();
        Directory.Delete(Path.Join(Workspace, "home"));
        HomeFixture.Symlink(Workspace, _dir.Create("linked-home"), "home");
        ChildProcess.MustSucceed("chown", "-h", $"{Platform.StrangerUid}:{Platform.StrangerGid}", Path.Join(Workspace, "home"));
        ChildProcess.MustSucceed("chown", $"{Platform.StrangerUid + 1}:{Platform.StrangerGid + 1}", Workspace);
        Hook("boot.d", "10-a");

        var result = Run();

        Assert.Empty(_runner.Runs);
        Assert.StartsWith($"hooks not run: {Workspace}/home is not a directory (a link, or a file), but the hooks' account is uid 0", result.Summary, StringComparison.Ordinal);
        Assert.EndsWith("Move it away, and the next boot seeds a home", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void An_agent_that_is_not_root_runs_hooks_as_itself()
    {
        Require.Root();
        ChildProcess.MustSucceed("chown", $"{Platform.StrangerUid}:{Platform.StrangerGid}", Path.Join(Workspace, "home"));
        Hook("boot.d", "10-a");

        var seen = Run(posix: new FaultyPosix { SeenAsUser = Platform.StrangerUid + 7 });

        Assert.True(seen.Outcome == StepOutcome.Ok, seen.Summary);

        Assert.Equal(Platform.StrangerUid + 7, Assert.Single(_runner.Runs).Identity.Uid);
    }

    private sealed record RecordedRun(HookRun Hook, HookIdentity Identity, IReadOnlyDictionary<string, string> Environment, string WorkingDirectory, TimeSpan Timeout);

    private sealed class RecordingRunner : IHookRunner
    {
        private readonly HashSet<string> _failing = [];

        public List<RecordedRun> Runs { get; } = [];

        public Action<RecordedRun>? OnRun { get; set; }

        public void Fail(string hook) => _failing.Add(hook);

        public void Succeed(string hook) => _failing.Remove(hook);

        public HookOutcome Run(HookRun hook, HookIdentity identity, IReadOnlyDictionary<string, string> environment, string workingDirectory, TimeSpan timeout, Action<string> onLine, CancellationToken stop)
        {
            var run = new RecordedRun(hook, identity, environment, workingDirectory, timeout);
            Runs.Add(run);
            OnRun?.Invoke(run);
            return new HookOutcome(_failing.Contains(hook.Name) ? 3 : 0, false, TimeSpan.FromMilliseconds(1));
        }
    }
}
