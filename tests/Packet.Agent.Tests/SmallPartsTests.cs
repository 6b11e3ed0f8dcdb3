using System.IO.Abstractions.TestingHelpers;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Sequence;
using Packet.Agent.Steps;
using Packet.Agent.Workspace;
using Xunit;
using Errno = Mono.Unix.Native.Errno;

namespace Packet.Agent.Tests;

public sealed class GuardStepTests
{
    private static readonly BootOptions Options = new() { Workspace = "/workspace", Home = "/root", NvidiaSmi = "nvidia-smi", TerminationLog = "/t" };

    private static (StepResult Result, DirectoryHandle? Workspace) Guard(PathTablePosix posix)
    {
        using var plan = new GuardStep(posix, TimeProvider.System).Decide(Options, new BootSettings(Options, new StopRequest(), TestAccounts.Root));
        return (plan.Preview, plan.Planned);
    }

    [Fact]
    public void A_workspace_directory_is_handed_on_open()
    {
        var (result, workspace) = Guard(new PathTablePosix().Directory("/workspace"));

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Equal("/workspace", workspace?.Path);
    }

    [Fact]
    public void A_missing_workspace_is_a_problem_that_names_the_path_and_what_happens_now()
    {
        var (result, workspace) = Guard(new PathTablePosix());

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains("/workspace does not exist", result.Summary);
        Assert.Contains("skipping seed, marker and profile", result.Summary);
        Assert.Null(workspace);
    }

    [Fact]
    public void A_user_who_cannot_write_the_volume_is_told_whose_it_is_and_how_to_give_it_to_them()
    {
        var posix = new PathTablePosix(effectiveUserId: 1000).Directory("/workspace", uid: 0, gid: 0, mode: "755", writable: false);

        var (result, workspace) = Guard(posix);

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Null(workspace);
        Assert.StartsWith("/workspace is not writable by the agent's user (uid 1000, gid 1000): it belongs to 0:0, mode 0755", result.Summary);
        Assert.Contains("securityContext.fsGroup: 1000", result.Summary);
        Assert.Contains("container/k8s/pod-non-root.yaml", result.Summary);
        Assert.Contains("chown -R 1000:1000 /workspace", result.Summary);
    }

    [Fact]
    public void A_volume_prepared_for_the_user_needs_only_what_it_keeps_to_be_writable()
    {
        var posix = new PathTablePosix(effectiveUserId: 1000)
            .Directory("/workspace", writable: false)
            .Directory("/workspace/home", uid: 1000, gid: 1000)
            .Directory("/workspace/.packet", uid: 1000, gid: 1000)
            .Directory("/workspace/bin", uid: 1000, gid: 1000);

        var (result, workspace) = Guard(posix);

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.NotNull(workspace);
    }

    [Fact]
    public void A_volume_holding_only_some_of_what_it_keeps_needs_its_root_writable_for_the_rest()
    {
        var posix = new PathTablePosix(effectiveUserId: 1000)
            .Directory("/workspace", writable: false)
            .Directory("/workspace/home", uid: 1000, gid: 1000)
            .Directory("/workspace/.packet", uid: 1000, gid: 1000);

        var (result, workspace) = Guard(posix);

        Assert.StartsWith("/workspace is not writable by the agent's user (uid 1000, gid 1000)", result.Summary);
        Assert.Null(workspace);
    }

    [Fact]
    public void A_home_the_user_cannot_write_is_named_even_when_the_volume_is_theirs()
    {
        var posix = new PathTablePosix(effectiveUserId: 1000)
            .Directory("/workspace", uid: 1000, gid: 1000)
            .Directory("/workspace/home", uid: 0, gid: 0, mode: "700", writable: false);

        var (result, _) = Guard(posix);

        Assert.StartsWith("/workspace/home is not writable by the agent's user (uid 1000, gid 1000): it belongs to 0:0, mode 0700", result.Summary);
    }

    [Fact]
    public void A_file_at_the_workspace_path_is_not_a_workspace() =>
        Assert.Contains("/workspace exists but is not a directory", Guard(new PathTablePosix().File("/workspace")).Result.Summary);

    [Fact]
    public void Root_is_not_asked_about_writability()
    {
        var posix = new PathTablePosix(effectiveUserId: 0).Directory("/workspace", writable: false);

        Assert.Equal(StepOutcome.Ok, Guard(posix).Result.Outcome);
    }
}

public sealed class TerminationMessageTests
{
    [Fact]
    public void The_reason_is_written_when_the_file_exists()
    {
        var fileSystem = FakeFileSystem.With("/dev/termination-log");

        Assert.Null(new TerminationMessage(fileSystem, "/dev/termination-log", pathWasConfigured: false).Write("seed: volume full"));

        Assert.Equal("seed: volume full", fileSystem.File.ReadAllText("/dev/termination-log"));
    }

    [Fact]
    public void Outside_Kubernetes_the_default_path_is_not_created()
    {
        var fileSystem = new MockFileSystem();
        fileSystem.AddDirectory("/dev");

        new TerminationMessage(fileSystem, "/dev/termination-log", pathWasConfigured: false).Write("reason");

        Assert.False(fileSystem.File.Exists("/dev/termination-log"));
    }

    [Fact]
    public void A_configured_path_is_created()
    {
        var fileSystem = new MockFileSystem();
        fileSystem.AddDirectory("/tmp");

        new TerminationMessage(fileSystem, "/tmp/term", pathWasConfigured: true).Write("reason");

        Assert.Equal("reason", fileSystem.File.ReadAllText("/tmp/term"));
    }

    [Fact]
    public void A_long_reason_is_cut_to_4_KB_on_a_character_boundary()
    {
        byte[] bytes = TerminationMessage.Truncate(new string('é', 3000));

        Assert.True(bytes.Length <= 4096);
        Assert.Equal(4096, bytes.Length);
        Assert.Equal(2048, System.Text.Encoding.UTF8.GetString(bytes).Length);
    }

    [Fact]
    public void A_reason_of_exactly_4_KB_is_kept_whole_one_byte_more_is_cut()
    {
        Assert.Equal(4096, TerminationMessage.Truncate(new string('a', 4096)).Length);
        Assert.Equal(4096, TerminationMessage.Truncate(new string('a', 4097)).Length);
    }

    [Theory]
    [InlineData("é", 4095)]
    [InlineData("€", 4094)]
    [InlineData("€", 4095)]
    [InlineData("😀", 4093)]
    [InlineData("😀", 4095)]
    public void A_character_across_the_limit_is_left_out_whole(string last, int before)
    {
        byte[] bytes = TerminationMessage.Truncate(new string('a', before) + last + "tail");

        Assert.Equal(new string('a', before), System.Text.Encoding.UTF8.GetString(bytes));
    }

    [Fact]
    public void A_file_that_cannot_be_written_is_reported_not_thrown()
    {
        var fileSystem = new MockFileSystem();

        string? problem = new TerminationMessage(fileSystem, "/no-such-dir/term", pathWasConfigured: true).Write("reason");

        Assert.NotNull(problem);
        Assert.StartsWith("could not write the termination message to /no-such-dir/term: ", problem);
    }
}

public sealed class DisplayTests
{
    [Theory]
    [InlineData("plain.txt", "plain.txt")]
    [InlineData("new\nline", "new\\nline")]
    [InlineData("bad-\0\u00ff", "bad-\\xff")]
    [InlineData("tab\there", "tab\\there")]
    [InlineData("back\\slash", "back\\\\slash")]
    [InlineData("pair-\ud83d\ude00", "pair-\ud83d\ude00")]
    public void Names_are_shown_on_one_unambiguous_line(string name, string shown) => Assert.Equal(shown, NativeName.Display(name));

    // Built here, not in attributes: an attribute's string is stored as UTF-8, which has no lone surrogate.
    [Fact]
    public void A_lone_surrogate_is_shown_as_the_bytes_it_was_read_from() =>
        Assert.Equal("surrogate-\\xed\\xa0\\x80", NativeName.Display("surrogate-" + (char)0xD800));

    [Theory]
    [InlineData("bell\u0001", "bell\\x01")]
    [InlineData("return\r", "return\\x0d")]
    [InlineData("ends-with-nul\0", "ends-with-nul\\x00")]
    [InlineData("delete\u007f", "delete\\x7f")]
    public void Other_control_characters_are_shown_as_hex_bytes(string name, string shown) => Assert.Equal(shown, NativeName.Display(name));

    [Theory]
    [InlineData("plain.txt")]
    [InlineData("caf\u00e9 with spaces")]
    public void A_name_that_needs_no_escape_is_shown_as_it_is_without_a_copy_per_log_line(string name) =>
        Assert.Same(name, NativeName.Display(name));

    [Theory]
    [InlineData(new byte[] { 0x61, 0x62 }, "ab")]
    [InlineData(new byte[] { 0x61, 0x7f }, "a\u007f")]
    [InlineData(new byte[] { 0x61, 0x80 }, "a\0\u0080")]
    [InlineData(new byte[] { 0xc3, 0xa9 }, "\u00e9")]
    public void Bytes_become_a_name_ascii_directly_and_anything_else_through_the_unix_encoding(byte[] bytes, string name) =>
        Assert.Equal(name, NativeName.FromBytes(bytes));

    [Theory]
    [InlineData("plain.txt", true)]
    [InlineData("caf\u00e9 \ud83d\ude00", true)]
    [InlineData("bad-\0\u00ff", false)]
    public void A_name_is_UTF_8_unless_it_holds_an_escaped_byte(string name, bool utf8) => Assert.Equal(utf8, NativeName.IsUtf8(name));

    [Fact]
    public void A_name_holding_a_lone_surrogate_is_not_UTF_8()
    {
        Assert.False(NativeName.IsUtf8("surrogate-" + (char)0xD800));
        Assert.False(NativeName.IsUtf8("low-" + (char)0xDC00 + "-first"));
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(1536, "1.5 KiB")]
    [InlineData(5L * 1024 * 1024 * 1024, "5.0 GiB")]
    [InlineData(1023, "1023 B")]
    [InlineData(1024, "1.0 KiB")]
    [InlineData(3L << 40, "3.0 TiB")]
    [InlineData(3L << 50, "3072.0 TiB")]
    public void Bytes_are_shown_in_binary_units(long bytes, string shown) => Assert.Equal(shown, Units.Bytes(bytes));

    [Theory]
    [InlineData(0, "0 entries")]
    [InlineData(1, "1 entry")]
    [InlineData(1234, "1,234 entries")]
    public void Entries_are_counted_in_plain_english(long count, string shown) => Assert.Equal(shown, Units.Entries(count));

    [Theory]
    [InlineData(20_000_000, 1L << 30, "19.1 MiB on disk (1.0 GiB apparent)")]
    [InlineData(4096, 4000, "4.0 KiB on disk (3.9 KiB apparent)")]
    [InlineData(1L << 20, (1L << 20) + 10, "1.0 MiB")]
    public void A_size_is_what_it_costs_on_disk_with_the_apparent_size_beside_when_they_differ(long onDisk, long apparent, string shown) =>
        Assert.Equal(shown, Units.Size(onDisk, apparent));

    [Fact]
    public void Durations_read_naturally()
    {
        Assert.Equal("1.5 s", Units.Duration(TimeSpan.FromSeconds(1.5)));
        Assert.Equal("2 min 5 s", Units.Duration(TimeSpan.FromSeconds(125)));
        Assert.Equal("1 h 1 min", Units.Duration(TimeSpan.FromMinutes(61)));
    }

    [Theory]
    [InlineData(9.99, "9.99 s")]
    [InlineData(10, "10 s")]
    [InlineData(59.4, "59 s")]
    [InlineData(60, "1 min 0 s")]
    [InlineData(3599, "59 min 59 s")]
    [InlineData(3600, "1 h 0 min")]
    public void Durations_change_their_unit_at_the_edges(double seconds, string shown) =>
        Assert.Equal(shown, Units.Duration(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData(LossKind.Symlinks, 1, "1 symlink left out")]
    [InlineData(LossKind.Symlinks, 2, "2 symlinks left out")]
    [InlineData(LossKind.Fifos, 1, "1 FIFO left out")]
    [InlineData(LossKind.HardLinks, 3, "3 hard links copied as separate files")]
    [InlineData(LossKind.Names, 1, "1 name the volume cannot hold, left out")]
    [InlineData(LossKind.Owners, 1, "owners of 1 entry")]
    [InlineData(LossKind.ExtendedAttributes, 1234, "extended attributes of 1,234 entries")]
    public void A_loss_reads_as_an_operator_would_say_it(LossKind kind, long count, string what) =>
        Assert.Equal(what, new LossSummary(kind, count, "x", "why").What);

    [Fact]
    public void Losses_are_counted_by_kind_with_the_first_one_met_as_the_example()
    {
        var losses = new VolumeLosses();

        losses.Add(LossKind.Owners, "first", "EPERM");
        losses.Add(LossKind.Owners, "second", "EINVAL");
        losses.Add(LossKind.Times, "third", "EPERM");

        Assert.Equal((2L, 1L, 0L, 3L), (losses[LossKind.Owners], losses[LossKind.Times], losses[LossKind.Modes], losses.Total));
        Assert.Equal([new LossSummary(LossKind.Owners, 2, "first", "EPERM"), new LossSummary(LossKind.Times, 1, "third", "EPERM")], losses.Summaries());
    }

    [Fact]
    public void The_marker_records_a_copys_counts_and_its_losses_by_key_only_when_there_are_some()
    {
        var report = new CopyReport { Files = 3, Directories = 1, Bytes = 10, AllocatedBytes = 4096, SkippedSockets = 1, Duration = TimeSpan.FromMilliseconds(1234.5678), FlushDuration = TimeSpan.FromMilliseconds(5.4321) };

        var clean = MarkerStep.Counts(report);
        report.Losses.Add(LossKind.HardLinks, "new\nline", "link: EPERM");
        var lossy = MarkerStep.Counts(report);

        Assert.Equal((4L, 3L, 10L, 4096L, 1L), (clean.Copied.Entries, clean.Copied.Files, clean.Copied.Bytes, clean.Copied.BytesOnDisk, clean.Skipped.Sockets));
        Assert.Equal((1.235, 0.005), (clean.DurationSeconds, clean.FlushSeconds));
        Assert.Null(clean.NotPreserved);
        var loss = Assert.Single(lossy.NotPreserved!);
        Assert.Equal(("hard_links", 1L, "new\\nline", "link: EPERM"), (loss.Key, loss.Value.Count, loss.Value.Example, loss.Value.Reason));
    }

    [Fact]
    public void A_copy_counts_its_entries_and_what_it_skipped_and_names_only_its_first_problems()
    {
        var report = new CopyReport(problemsToName: 2) { Files = 1, Directories = 2, Symlinks = 4, Fifos = 8, HardLinks = 16, SkippedUnreadable = 1, SkippedSockets = 2, SkippedDevices = 4, ChangedDuringCopy = 8, NotWritten = 16 };

        bool[] named = [.. Enumerable.Range(1, 3).Select(i => report.AddProblem(new CopyProblem(ProblemKind.Unreadable, $"p{i}", "x")))];

        Assert.Equal((31L, 31L), (report.Entries, report.Skipped));
        Assert.Equal([true, true, false], named);
        Assert.Equal(["p1", "p2"], report.NamedProblems.Select(p => p.Path));
        Assert.Equal(3, report.ProblemCount);
    }
}

public sealed class WorkspaceEnvironmentTests
{
    [Theory]
    [InlineData("/usr/bin", "/workspace/bin:/usr/bin")]
    [InlineData("/workspace/bin:/usr/bin", "/workspace/bin:/usr/bin")]
    [InlineData("/usr/bin:/workspace/bin", "/workspace/bin:/usr/bin")]
    [InlineData(null, "/workspace/bin:" + WorkspaceEnvironment.DefaultPath)]
    [InlineData("", "/workspace/bin:" + WorkspaceEnvironment.DefaultPath)]
    public void Workspace_bin_is_put_first_on_PATH_exactly_once(string? path, string expected)
    {
        var environment = new Dictionary<string, string>();
        if (path is not null)
        {
            environment["PATH"] = path;
        }

        WorkspaceEnvironment.Apply(environment, WorkspaceEnvironment.For("/workspace", _ => false));

        Assert.Equal(expected, environment["PATH"]);
    }

    [Fact]
    public void A_variable_the_pod_already_sets_is_not_overridden_but_PYTHONPATH_is_extended()
    {
        var environment = new Dictionary<string, string> { ["PATH"] = "/usr/bin", ["HF_HOME"] = "/models", ["PYTHONPATH"] = "/app" };
        var present = new HashSet<string> { ".cache/huggingface", "pip-packages", ".cache/pip", "requirements.txt" };

        WorkspaceEnvironment.Apply(environment, WorkspaceEnvironment.For("/workspace", present.Contains));

        Assert.Equal("/models", environment["HF_HOME"]);
        Assert.Equal("/workspace/.cache/pip", environment["PIP_CACHE_DIR"]);
        Assert.Equal("/workspace/pip-packages:/app", environment["PYTHONPATH"]);
        Assert.Equal("/workspace/venv/bin:/workspace/bin:/usr/bin", environment["PATH"]);
        Assert.False(environment.ContainsKey("CONDA_ENVS_DIRS"));
    }

    [Fact]
    public void An_empty_variable_counts_as_unset_and_PYTHONPATH_unset_is_the_workspace_folder_alone()
    {
        var environment = new Dictionary<string, string> { ["HF_HOME"] = string.Empty };
        var present = new HashSet<string> { ".cache/huggingface", "pip-packages" };

        WorkspaceEnvironment.Apply(environment, WorkspaceEnvironment.For("/workspace", present.Contains));

        Assert.Equal("/workspace/.cache/huggingface", environment["HF_HOME"]);
        Assert.Equal("/workspace/pip-packages", environment["PYTHONPATH"]);
    }
}

public sealed class ProgressTickerTests
{
    [Fact]
    public void It_ticks_at_its_interval_while_the_caller_is_busy()
    {
        int ticks = 0;

        using (new Copy.ProgressTicker(TimeSpan.FromMilliseconds(20), () => Interlocked.Increment(ref ticks)))
        {
            Thread.Sleep(400);
        }

        Assert.InRange(Volatile.Read(ref ticks), 3, 20);
    }

    [Fact]
    public void Dispose_waits_for_a_tick_in_flight_and_no_tick_follows_it()
    {
        using var started = new ManualResetEventSlim();
        int finished = 0;
        var ticker = new Copy.ProgressTicker(TimeSpan.FromMilliseconds(5), () =>
        {
            started.Set();
            Thread.Sleep(200);
            Interlocked.Increment(ref finished);
        });
        Assert.True(started.Wait(TimeSpan.FromSeconds(10)));

        ticker.Dispose();
        int atDispose = Volatile.Read(ref finished);
        Thread.Sleep(100);

        Assert.True(atDispose >= 1, "Dispose returned while a tick was still running");
        Assert.Equal(atDispose, Volatile.Read(ref finished));
    }
}

public sealed class SeedProgressTests
{
    private static readonly TreeSize Total = new(Entries: 200, Bytes: 4000, AllocatedBytes: 1000);

    [Fact]
    public void How_far_is_counted_in_on_disk_bytes_and_what_is_left_at_the_rate_so_far()
    {
        var progress = SeedProgress.Of(entries: 10, allocatedBytes: 250, Total, TimeSpan.FromSeconds(5));

        Assert.Equal(new SeedProgress(25.0, 50.0, TimeSpan.FromSeconds(15)), progress);
    }

    [Fact]
    public void The_percentage_is_rounded_to_a_tenth()
    {
        Assert.Equal(33.3, SeedProgress.Of(0, 1, new TreeSize(1, 3, 3), TimeSpan.FromSeconds(1)).Percent);
    }

    [Fact]
    public void A_tree_without_allocated_bytes_is_counted_in_entries_and_has_no_time_left_to_tell()
    {
        var progress = SeedProgress.Of(entries: 50, allocatedBytes: 0, new TreeSize(Entries: 200, Bytes: 0, AllocatedBytes: 0), TimeSpan.FromSeconds(2));

        Assert.Equal(new SeedProgress(25.0, 0, null), progress);
    }

    [Fact]
    public void An_empty_tree_is_done()
    {
        Assert.Equal(new SeedProgress(100, 0, null), SeedProgress.Of(0, 0, default, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void More_than_was_planned_is_still_one_hundred_percent_with_nothing_left()
    {
        var progress = SeedProgress.Of(entries: 300, allocatedBytes: 1500, Total, TimeSpan.FromSeconds(3));

        Assert.Equal(new SeedProgress(100, 500, null), progress);
    }

    [Fact]
    public void The_first_instant_does_not_divide_by_zero()
    {
        var progress = SeedProgress.Of(entries: 1, allocatedBytes: 100, Total, TimeSpan.Zero);

        Assert.Equal(100 / 1e-3, progress.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(900 / (100 / 1e-3)), progress.Left);
    }
}

public sealed class SeedSummaryTests
{
    private static CopyReport Report(Action<CopyReport>? adjust = null)
    {
        var report = new CopyReport { Files = 7, Directories = 2, Symlinks = 1, Bytes = 4096, AllocatedBytes = 2 * 1024 * 1024 };
        report.Duration = TimeSpan.FromSeconds(2);
        report.FlushDuration = TimeSpan.FromMilliseconds(300);
        adjust?.Invoke(report);
        return report;
    }

    [Fact]
    public void A_complete_copy_is_ok_and_its_line_gives_counts_size_rate_and_flush()
    {
        var result = SeedHomeStep.Result(Report(r => r.SkippedSockets = 2));

        Assert.Equal(StepResult.Ok("copied 10 entries, 2.0 MiB on disk (4.0 KiB apparent), in 2.0 s (1.0 MiB/s) and flushed it to disk in 0.3 s; skipped 0 unreadable, 2 sockets, 0 devices, 0 changed while copying"), result);
    }

    [Fact]
    public void Refused_kept_and_resumed_entries_and_losses_each_add_their_clause()
    {
        var report = Report(r =>
        {
            r.NotWritten = 1;
            r.KeptExisting = 3;
            r.ResumedFiles = 4;
        });
        report.Losses.Add(Copy.LossKind.Owners, "a", "EPERM");

        var result = SeedHomeStep.Result(report);

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.EndsWith(
            "0 changed while copying, 1 refused by the volume; kept 3 entries already in the home; 4 files were already complete from an interrupted boot; not preserved on this volume: owners of 1 entry",
            result.Summary,
            StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("unreadable")]
    [InlineData("refused")]
    [InlineData("lost")]
    public void A_home_less_than_its_source_is_a_warning(string why)
    {
        var report = Report(r =>
        {
            r.SkippedUnreadable = why == "unreadable" ? 1 : 0;
            r.NotWritten = why == "refused" ? 1 : 0;
        });
        if (why == "lost")
        {
            report.Losses.Add(Copy.LossKind.Times, "a", "EPERM");
        }

        Assert.Equal(StepOutcome.Warning, SeedHomeStep.Result(report).Outcome);
    }

    [Fact]
    public void Changed_while_copying_or_kept_entries_alone_are_not_a_warning()
    {
        Assert.Equal(StepOutcome.Ok, SeedHomeStep.Result(Report(r => { r.ChangedDuringCopy = 1; r.KeptExisting = 1; r.ResumedFiles = 1; })).Outcome);
    }

    [Fact]
    public void A_copy_in_no_time_has_a_rate_and_does_not_divide_by_zero()
    {
        var summary = SeedHomeStep.Summary(Report(r => { r.Duration = TimeSpan.Zero; r.AllocatedBytes = 1024; }));

        Assert.Contains("(1000.0 KiB/s)", summary, StringComparison.Ordinal);
    }
}

/// <summary>Every errno decision, one table: which answers stop a copy, which mean the volume cannot hold a thing, which call for a retry another way.</summary>
public sealed class ErrnoMeaningTests
{
    private static readonly Errno[] Sampled =
    [
        Errno.ENOSPC, Errno.EDQUOT, Errno.EFBIG, Errno.EROFS, Errno.EIO,
        Errno.ENOMEM, Errno.EMFILE, Errno.ENFILE, Errno.EPERM, Errno.ENOSYS,
        Errno.EOPNOTSUPP, Errno.EINVAL, Errno.EILSEQ, Errno.ENAMETOOLONG, Errno.ENOENT,
        Errno.EXDEV, Errno.EBADF, Errno.ETXTBSY, Errno.ENOTEMPTY, Errno.EEXIST,
        Errno.EACCES, Errno.EMLINK, Errno.EAGAIN,
    ];

    public static TheoryData<string, string> Meanings() => new()
    {
        { nameof(ErrnoMeaning.StopsTheCopy), "ENOSPC EDQUOT EFBIG EROFS EIO ENOMEM EMFILE ENFILE" },
        { nameof(ErrnoMeaning.OutOfSpace), "ENOSPC EDQUOT EFBIG" },
        { nameof(ErrnoMeaning.VolumeRefuses), "EPERM ENOSYS EOPNOTSUPP EINVAL" },
        { nameof(ErrnoMeaning.FifoRefused), "EIO EPERM ENOSYS EOPNOTSUPP EINVAL" },
        { nameof(ErrnoMeaning.NameRefused), "EPERM EINVAL EILSEQ ENAMETOOLONG ENOENT" },
        { nameof(ErrnoMeaning.RenameFlagsUnsupported), "ENOSYS EINVAL" },
        { nameof(ErrnoMeaning.XattrsUnsupported), "ENOSYS EOPNOTSUPP" },
        { nameof(ErrnoMeaning.InKernelCopyRefused), "ENOSYS EOPNOTSUPP EINVAL EXDEV EBADF ETXTBSY" },
        { nameof(ErrnoMeaning.HoleSeekUnsupported), "EOPNOTSUPP EINVAL" },
        { nameof(ErrnoMeaning.DirectoryNotEmptied), "EPERM ENOTEMPTY EEXIST EACCES" },
    };

    [Theory]
    [MemberData(nameof(Meanings))]
    public void Each_decision_holds_exactly_its_errnos(string decision, string errnos)
    {
        Func<Errno, bool> decide = decision switch
        {
            nameof(ErrnoMeaning.StopsTheCopy) => ErrnoMeaning.StopsTheCopy,
            nameof(ErrnoMeaning.OutOfSpace) => ErrnoMeaning.OutOfSpace,
            nameof(ErrnoMeaning.VolumeRefuses) => ErrnoMeaning.VolumeRefuses,
            nameof(ErrnoMeaning.FifoRefused) => ErrnoMeaning.FifoRefused,
            nameof(ErrnoMeaning.NameRefused) => ErrnoMeaning.NameRefused,
            nameof(ErrnoMeaning.RenameFlagsUnsupported) => ErrnoMeaning.RenameFlagsUnsupported,
            nameof(ErrnoMeaning.XattrsUnsupported) => ErrnoMeaning.XattrsUnsupported,
            nameof(ErrnoMeaning.InKernelCopyRefused) => ErrnoMeaning.InKernelCopyRefused,
            nameof(ErrnoMeaning.HoleSeekUnsupported) => ErrnoMeaning.HoleSeekUnsupported,
            _ => ErrnoMeaning.DirectoryNotEmptied,
        };

        var expected = errnos.Split(' ').Select(Enum.Parse<Errno>).Order();

        Assert.Equal(expected, Sampled.Where(decide).Order());
    }
}
