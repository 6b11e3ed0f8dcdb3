using System.Collections;
using System.IO.Abstractions.TestingHelpers;
using System.Text;
using Packet.Agent.Ssh;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>
/// Finding the agent's own sshd again. /proc/PID/comm holds the name and a newline, /proc/PID/cmdline
/// the arguments each ended by a NUL (proc(5)); sshd's listener rewrites its arguments into one
/// space-separated title (OpenSSH's setproctitle in sshd.c), which is what a later boot reads.
/// </summary>
public sealed class AgentSshdTests
{
    private const string Runtime = "/run/packet-agent";
    private const string Config = "/run/packet-agent/sshd_config";
    private const string ConfigText = "Port 2222\n";

    private static MockFileSystem Machine(string pidFile, string comm = "sshd\n", string? cmdline = null, int pid = 4242)
    {
        var files = new MockFileSystem();
        files.AddFile(Path.Join(Runtime, AgentSshd.PidFile), new MockFileData(pidFile));
        files.AddFile(Config, new MockFileData(ConfigText));
        files.AddFile($"/proc/{pid}/comm", new MockFileData(comm));
        files.AddFile($"/proc/{pid}/cmdline", new MockFileData(Encoding.UTF8.GetBytes(cmdline ?? $"/usr/sbin/sshd\0-f\0{Config}\0-E\0/run/packet-agent/sshd.log\0")));
        return files;
    }

    [Fact]
    public void The_sshd_the_pid_file_names_started_with_this_config_is_found_with_the_config_it_runs()
    {
        var found = AgentSshd.Find(Machine("4242\n"), Runtime);

        Assert.Equal(new RunningSshd(4242, ConfigText), found);
    }

    [Fact]
    public void The_listeners_process_title_is_read_as_its_arguments()
    {
        var files = Machine("4242", cmdline: $"sshd: /usr/sbin/sshd -f {Config} -E /run/packet-agent/sshd.log [listener] 0 of 10-100 startups\0");

        Assert.Equal(4242, AgentSshd.Find(files, Runtime)?.Pid);
    }

    [Fact]
    public void A_config_given_as_the_very_first_argument_is_found()
    {
        var files = Machine("4242", cmdline: $"-f\0{Config}\0");

        Assert.True(AgentSshd.StartedWith(files, 4242, Config));
    }

    [Theory]
    [InlineData("/usr/sbin/sshd\0-f")]
    [InlineData("/run/packet-agent/sshd_config\0-D\0")]
    [InlineData("/usr/sbin/sshd\0-f\0/etc/ssh/sshd_config\0")]
    [InlineData("/usr/sbin/sshd\0-f\0/run/packet-agent/sshd_config.old\0")]
    [InlineData("/usr/sbin/sshd\0-E\0/run/packet-agent/sshd_config\0")]
    [InlineData("/usr/sbin/sshd\0/run/packet-agent/sshd_config\0-f\0")]
    [InlineData("/usr/sbin/sshd\0-D\0")]
    public void An_sshd_started_with_another_config_or_none_is_not_the_agents(string cmdline)
    {
        var files = Machine("4242", cmdline: cmdline);

        Assert.Null(AgentSshd.Find(files, Runtime));
        Assert.False(AgentSshd.StartedWith(files, 4242, Config));
    }

    [Theory]
    [InlineData("bash\n")]
    [InlineData("sshd-session\n")]
    [InlineData("")]
    public void A_process_that_is_not_sshd_is_never_taken_for_it_even_with_the_agents_arguments(string comm)
    {
        var files = Machine("4242", comm: comm);

        Assert.Null(AgentSshd.Find(files, Runtime));
        Assert.False(AgentSshd.IsSshd(files, 4242));
    }

    [Fact]
    public void A_pid_whose_process_is_gone_is_not_sshd()
    {
        var files = Machine("4242");
        files.RemoveFile("/proc/4242/comm");
        files.RemoveFile("/proc/4242/cmdline");

        Assert.False(AgentSshd.IsSshd(files, 4242));
        Assert.False(AgentSshd.StartedWith(files, 4242, Config));
        Assert.Null(AgentSshd.Find(files, Runtime));
    }

    [Fact]
    public void A_process_that_ends_between_its_name_and_its_arguments_is_not_taken()
    {
        var files = Machine("4242");
        files.RemoveFile("/proc/4242/cmdline");

        Assert.True(AgentSshd.IsSshd(files, 4242));
        Assert.False(AgentSshd.StartedWith(files, 4242, Config));
    }

    [Fact]
    public void Without_its_config_the_running_sshd_is_not_known_to_be_the_agents()
    {
        var files = Machine("4242");
        files.RemoveFile(Config);

        Assert.Null(AgentSshd.Find(files, Runtime));
    }

    [Theory]
    [InlineData("4242", 4242)]
    [InlineData("  4242\n", 4242)]
    [InlineData("1", 1)]
    [InlineData("0", null)]
    [InlineData("-4242", null)]
    [InlineData("+4242", null)]
    [InlineData("4,242", null)]
    [InlineData("4242 1", null)]
    [InlineData("0x10", null)]
    [InlineData("99999999999", null)]
    [InlineData("", null)]
    [InlineData("sshd", null)]
    public void A_pid_file_is_a_positive_decimal_number_and_nothing_else(string content, int? pid)
    {
        var files = Machine(content);

        Assert.Equal(pid, AgentSshd.ReadPid(files, Path.Join(Runtime, AgentSshd.PidFile)));
    }

    [Fact]
    public void No_pid_file_is_no_sshd()
    {
        var files = Machine("4242");
        files.RemoveFile(Path.Join(Runtime, AgentSshd.PidFile));

        Assert.Null(AgentSshd.ReadPid(files, Path.Join(Runtime, AgentSshd.PidFile)));
        Assert.Null(AgentSshd.Find(files, Runtime));
    }

    [Fact]
    public void A_pid_file_or_a_processs_entries_that_cannot_be_read_as_files_are_no_sshd()
    {
        var files = Machine("4242");
        files.RemoveFile(Path.Join(Runtime, AgentSshd.PidFile));
        files.AddDirectory(Path.Join(Runtime, AgentSshd.PidFile));

        Assert.Null(AgentSshd.ReadPid(files, Path.Join(Runtime, AgentSshd.PidFile)));

        var nameless = Machine("4242");
        nameless.RemoveFile("/proc/4242/comm");
        nameless.AddDirectory("/proc/4242/comm");
        Assert.False(AgentSshd.IsSshd(nameless, 4242));

        var argumentless = Machine("4242");
        argumentless.RemoveFile("/proc/4242/cmdline");
        argumentless.AddDirectory("/proc/4242/cmdline");
        Assert.False(AgentSshd.StartedWith(argumentless, 4242, Config));

    }

    [Fact]
    public void A_pid_file_naming_another_process_finds_nothing_though_the_agents_sshd_runs_elsewhere()
    {
        var files = Machine("4343");

        Assert.Null(AgentSshd.Find(files, Runtime));
    }
}

/// <summary>Debian's user-group rule (debian/patches/user-group-modes.patch in openssh) over a given account database.</summary>
public sealed class UserGroupsTests
{
    private static readonly Account Dev = new("dev", 1000, 1000, "/home/dev");
    private static readonly Account Ops = new("ops", 1001, 1001, "/home/ops");
    private static readonly Account Guest = new("guest", 1002, 1000, "/home/guest");

    [Fact]
    public void A_group_that_is_the_primary_group_of_the_account_alone_holds_it_alone() =>
        Assert.True(UserGroups.HoldsOnly([Dev, Ops], [], 1000, 1000, 1000));

    [Fact]
    public void A_group_that_is_also_another_accounts_primary_group_does_not() =>
        Assert.False(UserGroups.HoldsOnly([Dev, Ops, Guest], [], 1000, 1000, 1000));

    [Fact]
    public void A_group_that_does_not_exist_holds_no_one() =>
        Assert.False(UserGroups.HoldsOnly([Dev], null, 1000, 1000, 1000));

    [Fact]
    public void A_group_no_account_has_as_primary_and_with_no_members_holds_no_one() =>
        Assert.False(UserGroups.HoldsOnly([Dev, Ops], [], 2000, 1000, 1000));

    [Fact]
    public void A_group_listing_only_the_owner_holds_the_account_alone() =>
        Assert.True(UserGroups.HoldsOnly([Dev, Ops], ["dev"], 2000, 1000, 1000));

    [Fact]
    public void A_primary_group_that_also_lists_its_owner_holds_the_account_alone() =>
        Assert.True(UserGroups.HoldsOnly([Dev, Ops], ["dev"], 1000, 1000, 1000));

    [Theory]
    [InlineData("ops")]
    [InlineData("dev", "ops")]
    [InlineData("ops", "dev")]
    public void A_group_listing_anyone_but_the_owner_alone_does_not(params string[] members) =>
        Assert.False(UserGroups.HoldsOnly([Dev, Ops], members, 2000, 1000, 1000));

    [Fact]
    public void A_member_named_for_an_owner_the_database_does_not_know_does_not() =>
        Assert.False(UserGroups.HoldsOnly([Dev], ["dev"], 2000, 1000, 1234));

    [Fact]
    public void A_listed_member_does_not_excuse_a_primary_group_shared_with_another_account() =>
        Assert.False(UserGroups.HoldsOnly([Dev, Guest], ["dev"], 1000, 1000, 1000));
}

/// <summary>The pod's recorded environment, read back by an agent run from inside one of its SSH sessions.</summary>
public sealed class PodEnvironmentTests
{
    private const string Runtime = "/run/packet-agent";
    private static readonly string Record = Path.Join(Runtime, PodEnvironment.RecordFile);

    private static MockFileSystem WithAgentsSshd(byte[]? record)
    {
        var files = new MockFileSystem();
        string config = Path.Join(Runtime, AgentSshd.ConfigFile);
        files.AddFile(Path.Join(Runtime, AgentSshd.PidFile), new MockFileData("77"));
        files.AddFile(config, new MockFileData("Port 2222\n"));
        files.AddFile("/proc/77/comm", new MockFileData("sshd\n"));
        files.AddFile("/proc/77/cmdline", new MockFileData(Encoding.UTF8.GetBytes($"/usr/sbin/sshd\0-f\0{config}\0")));
        if (record is not null)
        {
            files.AddFile(Record, new MockFileData(record));
        }

        return files;
    }

    private static Hashtable Session(params (string Name, string Value)[] variables)
    {
        var process = new Hashtable { ["SSH_CONNECTION"] = "10.0.0.9 50000 10.0.0.2 2222", ["PATH"] = "/usr/bin", ["HOME"] = "/home/dev" };
        foreach (var (name, value) in variables)
        {
            process[name] = value;
        }

        return process;
    }

    private static byte[] Entries(params string[] entries) => Encoding.UTF8.GetBytes(string.Concat(entries.Select(entry => entry + "\0")));

    [Fact]
    public void Inside_a_session_of_the_agents_sshd_the_pods_record_is_used_and_says_where_it_came_from()
    {
        var resolved = PodEnvironment.Resolve(WithAgentsSshd(Entries("PATH=/workspace/bin:/usr/bin", "HF_TOKEN=hf_x", "PACKET_SSH_PORT=2222")), Runtime, () => null, Session());

        Assert.Equal("/workspace/bin:/usr/bin", resolved.Variables["PATH"]);
        Assert.Equal("hf_x", resolved.Variables["HF_TOKEN"]);
        Assert.Equal("2222", resolved.Variables["PACKET_SSH_PORT"]);
        Assert.Null(resolved.Variables["SSH_CONNECTION"]);
        Assert.Null(resolved.Variables["HOME"]);
        Assert.Equal($"{Record} (the environment the boot that started sshd pid 77 ran with)", resolved.RecordedBy);
        Assert.Null(resolved.NotUsed);
    }

    [Fact]
    public void Settings_typed_in_the_session_win_over_the_record_but_the_pods_path_is_the_records()
    {
        var resolved = PodEnvironment.Resolve(
            WithAgentsSshd(Entries("PACKET_SSH_PORT=2222", "PACKET_POD_PATH=/workspace/bin:/usr/bin")),
            Runtime,
            () => null,
            Session(("PACKET_SSH_PORT", "2200"), ("PACKET_POD_PATH", "/tmp/evil"), ("PACKETS", "session's")));

        Assert.Equal("2200", resolved.Variables["PACKET_SSH_PORT"]);
        Assert.Equal("/workspace/bin:/usr/bin", resolved.Variables["PACKET_POD_PATH"]);
        Assert.Null(resolved.Variables["PACKETS"]);
    }

    [Fact]
    public void A_record_is_read_as_the_kernel_lists_an_environment_and_entries_without_a_name_are_dropped()
    {
        var resolved = PodEnvironment.Resolve(WithAgentsSshd(Entries("A=1=2", "EMPTY=", "NOEQUALS", "=nameless", "A2=x", "A2=last")), Runtime, () => null, Session());

        Assert.Equal(["A", "A2", "EMPTY"], resolved.Variables.Keys.Cast<string>().Order(StringComparer.Ordinal));
        Assert.Equal("1=2", resolved.Variables["A"]);
        Assert.Equal(string.Empty, resolved.Variables["EMPTY"]);
        Assert.Equal("last", resolved.Variables["A2"]);
    }

    [Fact]
    public void A_runtime_directory_that_may_not_be_trusted_is_not_read_and_the_session_is_told_why()
    {
        var process = Session();

        var resolved = PodEnvironment.Resolve(WithAgentsSshd(Entries("PATH=/tmp/evil")), Runtime, () => "it belongs to uid 1001", process);

        Assert.Same(process, resolved.Variables);
        Assert.Null(resolved.RecordedBy);
        Assert.Equal("inside an SSH session, but the pod's recorded environment is not used: it belongs to uid 1001", resolved.NotUsed);
    }

    [Fact]
    public void An_empty_session_marker_is_no_session_and_the_record_is_not_looked_at()
    {
        var process = Session(("SSH_CONNECTION", string.Empty));

        var resolved = PodEnvironment.Resolve(WithAgentsSshd(Entries("PATH=/workspace/bin")), Runtime, () => throw new InvalidOperationException("asked"), process);

        Assert.Same(process, resolved.Variables);
        Assert.Null(resolved.RecordedBy);
    }

    [Fact]
    public void Without_a_runtime_directory_the_session_is_the_environment_and_its_trust_is_not_asked()
    {
        var process = Session();

        var resolved = PodEnvironment.Resolve(new MockFileSystem(), Runtime, () => throw new InvalidOperationException("asked"), process);

        Assert.Same(process, resolved.Variables);
        Assert.Null(resolved.NotUsed);
    }

    [Fact]
    public void Without_the_agents_sshd_running_a_record_is_not_used()
    {
        var files = WithAgentsSshd(Entries("PATH=/workspace/bin"));
        files.File.WriteAllText("/proc/77/comm", "bash\n");
        var process = Session();

        var resolved = PodEnvironment.Resolve(files, Runtime, () => null, process);

        Assert.Same(process, resolved.Variables);
        Assert.Null(resolved.RecordedBy);
        Assert.Null(resolved.NotUsed);
    }

    [Fact]
    public void Without_a_record_the_session_is_the_environment()
    {
        var process = Session();

        var resolved = PodEnvironment.Resolve(WithAgentsSshd(record: null), Runtime, () => null, process);

        Assert.Same(process, resolved.Variables);
        Assert.Null(resolved.RecordedBy);
    }

    [Fact]
    public void A_record_of_up_to_one_mebibyte_is_read_and_a_larger_one_is_not()
    {
        byte[] Sized(int size)
        {
            byte[] head = Encoding.UTF8.GetBytes("BIG=");
            byte[] record = Enumerable.Repeat((byte)'x', size).ToArray();
            head.CopyTo(record, 0);
            record[^1] = 0;
            return record;
        }

        var atLimit = PodEnvironment.Resolve(WithAgentsSshd(Sized(1 << 20)), Runtime, () => null, Session());
        var process = Session();
        var over = PodEnvironment.Resolve(WithAgentsSshd(Sized((1 << 20) + 1)), Runtime, () => null, process);

        Assert.Equal((1 << 20) - 5, ((string)atLimit.Variables["BIG"]!).Length);
        Assert.Same(process, over.Variables);
    }

    [Fact]
    public void A_record_that_cannot_be_read_leaves_the_session_as_it_is()
    {
        var files = WithAgentsSshd(Entries("PATH=/workspace/bin"));
        files.GetFile(Record).AllowedFileShare = FileShare.None;
        var process = Session();

        var resolved = PodEnvironment.Resolve(files, Runtime, () => null, process);

        Assert.Same(process, resolved.Variables);
    }
}

/// <summary>A hook's output cut into lines that fit in memory whatever the hook prints.</summary>
public sealed class BoundedLinesTests
{
    private static List<string> Split(params byte[][] chunks)
    {
        var lines = new List<string>();
        var splitter = new Packet.Agent.Hooks.BoundedLines(lines.Add);
        foreach (byte[] chunk in chunks)
        {
            splitter.Add(chunk);
        }

        splitter.End();
        return lines;
    }

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void Lines_end_at_a_newline_across_chunks_and_a_carriage_return_before_it_is_dropped() =>
        Assert.Equal(["one", "two", "", "three", "last"], Split(Bytes("on"), Bytes("e\ntwo\r\n"), Bytes("\nthree\n"), Bytes("last")));

    [Fact]
    public void Output_that_ends_with_a_newline_has_no_empty_last_line() =>
        Assert.Equal(["a"], Split(Bytes("a\n")));

    [Fact]
    public void A_line_longer_than_the_limit_is_cut_and_says_how_much_was_left_out_and_the_next_line_is_whole()
    {
        int max = Packet.Agent.Hooks.BoundedLines.MaxLineBytes;
        byte[] chunk = Enumerable.Repeat((byte)'a', max - 1).ToArray();

        var lines = Split(chunk, Bytes("bcd"), Bytes("e\nnext\n"));

        Assert.Equal(2, lines.Count);
        Assert.Equal(new string('a', max - 1) + "b [line cut: 3 more bytes]", lines[0]);
        Assert.Equal("next", lines[1]);
    }

    [Fact]
    public void A_line_exactly_at_the_limit_is_whole_and_a_cut_one_keeps_its_carriage_return()
    {
        int max = Packet.Agent.Hooks.BoundedLines.MaxLineBytes;

        Assert.Equal([new string('x', max)], Split(Enumerable.Repeat((byte)'x', max).ToArray(), Bytes("\n")));
        Assert.Equal([new string('x', max) + " [line cut: 1 more bytes]"], Split(Enumerable.Repeat((byte)'x', max).ToArray(), Bytes("\r")));
    }

    [Fact]
    public void Gigabytes_without_a_newline_keep_one_line_of_the_limit()
    {
        var lines = new List<string>();
        var splitter = new Packet.Agent.Hooks.BoundedLines(lines.Add);
        byte[] chunk = Enumerable.Repeat((byte)'z', 1 << 20).ToArray();
        for (int i = 0; i < 2048; i++)
        {
            splitter.Add(chunk);
        }

        splitter.End();

        string line = Assert.Single(lines);
        Assert.EndsWith($" [line cut: {(2048L << 20) - Packet.Agent.Hooks.BoundedLines.MaxLineBytes} more bytes]", line, StringComparison.Ordinal);
    }
}
