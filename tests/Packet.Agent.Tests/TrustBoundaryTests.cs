using System.Collections;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Ssh;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>What a root agent runs, whom it acts for, and what a session is given: the trust boundary's decisions, without a machine.</summary>
public sealed class ProgramTrustTests
{
    /// <summary>A root agent's view of an image: /usr/bin root's, the volume's bin the user's, a workspace root owns alone.</summary>
    private static PathTablePosix Image(uint user = 0) => new PathTablePosix(user)
        .Directory("/").Directory("/usr").Directory("/usr/bin").File("/usr/bin/sshd")
        .Directory("/workspace", gid: 1000, mode: "2775").Directory("/workspace/bin", uid: 1000, gid: 1000).File("/workspace/bin/sshd")
        .Directory("/roots").Directory("/roots/bin").File("/roots/bin/sshd");

    [Fact]
    public void Root_runs_a_program_only_where_no_other_account_can_change_it()
    {
        var trust = new ProgramTrust(Image());

        Assert.Null(trust.Refusal("/usr/bin/sshd"));
        Assert.Equal("/workspace is writable by its group (gid 1000) (mode 2775), who could put anything there", trust.Refusal("/workspace/bin/sshd"));
        Assert.Null(trust.ForCommand!("/roots/bin/sshd"));
    }

    [Fact]
    public void The_images_own_programs_never_come_from_the_volume_even_a_part_root_owns()
    {
        var imageOnly = new ProgramTrust(Image()).ForImageProgram("/roots")!;

        Assert.Equal("it is on the volume at /roots, and root runs the image's own", imageOnly("/roots/bin/sshd"));
        Assert.Equal("it is on the volume at /roots, and root runs the image's own", imageOnly("/roots"));
        Assert.Null(imageOnly("/usr/bin/sshd"));
        Assert.DoesNotContain("on the volume", imageOnly("/rootsy/bin/x"), StringComparison.Ordinal);
    }

    [Fact]
    public void An_agent_that_is_not_root_passes_nothing_over()
    {
        var trust = new ProgramTrust(Image(user: 1000));

        Assert.Null(trust.ForCommand);
        Assert.Null(trust.ForImageProgram("/workspace"));
        Assert.True(trust.MaySearch("/workspace/bin"));
    }

    [Fact]
    public void A_root_search_path_keeps_what_no_other_account_can_change_or_make()
    {
        var trust = new ProgramTrust(Image());

        Assert.True(trust.MaySearch("/usr/bin"));
        Assert.True(trust.MaySearch("/roots/venv/bin"));
        Assert.False(trust.MaySearch("/workspace/bin"));
        Assert.False(trust.MaySearch("/workspace/venv/bin"));
        Assert.True(trust.MaySearch("/nowhere/at/all"));
    }

    [Fact]
    public void A_distrusted_match_is_passed_over_and_named_and_the_next_one_found()
    {
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With("/workspace/bin/tool", "/usr/bin/tool"), "/workspace/bin/tool", "/usr/bin/tool");

        var found = resolver.Resolve("tool", "/workspace/bin:/usr/bin", path => path.StartsWith("/workspace/", StringComparison.Ordinal) ? "the user's" : null);

        Assert.Equal("/usr/bin/tool", found.Path);
        Assert.Equal(["/workspace/bin/tool (the user's)"], found.PassedOver);
        Assert.Equal("passed over /workspace/bin/tool (the user's): root runs no program another account could have changed", found.PassedOverNote);
    }

    [Fact]
    public void When_every_match_is_distrusted_nothing_runs_and_it_is_126()
    {
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With("/a/tool", "/b/tool"), "/a/tool", "/b/tool");

        var found = resolver.Resolve("tool", "/a:/b", _ => "no");

        Assert.Equal(126, found.ExitCode);
        Assert.Equal("tool: no copy on PATH may be run by root", found.Failure);
        Assert.Equal(["/a/tool (no)", "/b/tool (no)"], found.PassedOver);
        Assert.Null(CommandResolution.At("/x").PassedOverNote);
    }

    [Fact]
    public void A_distrusted_path_named_with_a_slash_is_not_run_and_says_why()
    {
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With("/workspace/start.sh"), "/workspace/start.sh");

        var found = resolver.Resolve("/workspace/start.sh", null, _ => "/workspace is writable by everyone");

        Assert.Equal(126, found.ExitCode);
        Assert.Equal("/workspace/start.sh is not run by root: /workspace is writable by everyone; root runs no program another account could have changed", found.Failure);
        Assert.Equal("/workspace/start.sh", resolver.Resolve("/workspace/start.sh", null, _ => null).Path);
    }
}

public sealed class HomeAccountTests
{
    private static readonly BootOptions Options = new() { Workspace = "/workspace", Home = "/home/dev" };

    private sealed class Passwd(params Account[] accounts) : IAccounts
    {
        public Account? ByUid(uint uid) => accounts.FirstOrDefault(a => a.Uid == uid);

        public Account? ByHome(string home) => accounts.FirstOrDefault(a => a.Home == home);

        public bool HoldsOnly(uint gid, uint uid, uint owner) => false;
    }

    [Fact]
    public void The_owner_of_the_images_home_is_the_account()
    {
        var posix = new PathTablePosix().Directory("/").Directory("/home").Directory("/home/dev", uid: 1000, gid: 100);

        var choice = HomeAccount.Resolve(posix, new Passwd(), Options);

        Assert.Equal(new HomeAccount(1000, 100, "the owner of /home/dev in the image"), choice.Account);
        Assert.Equal("uid 1000 (the owner of /home/dev in the image)", choice.Account!.ToString());
    }

    [Fact]
    public void The_operator_names_it_with_user_and_its_group_comes_from_passwd_or_the_uid()
    {
        var posix = new PathTablePosix().Directory("/home/dev", uid: 1000, gid: 1000);
        var passwd = new Passwd(new Account("ml", 2000, 300, "/home/ml"));

        Assert.Equal(new HomeAccount(2000, 300, "--user"), HomeAccount.Resolve(posix, passwd, Options with { User = new UserIds(2000, null) }).Account);
        Assert.Equal(new HomeAccount(2000, 7, "--user"), HomeAccount.Resolve(posix, passwd, Options with { User = new UserIds(2000, 7) }).Account);
        Assert.Equal(new HomeAccount(4242, 4242, "--user"), HomeAccount.Resolve(posix, passwd, Options with { User = new UserIds(4242, null) }).Account);
    }

    [Fact]
    public void An_agent_that_is_not_root_acts_for_itself_whatever_it_is_told()
    {
        var posix = new PathTablePosix(effectiveUserId: 1000).Directory("/home/dev", uid: 2000);

        var choice = HomeAccount.Resolve(posix, new Passwd(), Options with { User = new UserIds(0, 0) });

        Assert.Equal(new HomeAccount(1000, 1000, "the agent's own user: it cannot act for another"), choice.Account);
    }

    [Fact]
    public void A_live_home_linked_to_the_volume_takes_the_images_moved_aside_else_the_passwd_entry()
    {
        var linked = new PathTablePosix().Directory("/").Directory("/home").Symlink("/home/dev", "/workspace/home").Directory("/home/dev.packet-image", uid: 1000, gid: 1000);
        var cleared = new PathTablePosix().Directory("/").Directory("/home").Symlink("/home/dev", "/workspace/home");
        var passwd = new Passwd(new Account("dev", 1001, 1001, "/home/dev"));

        Assert.Equal(new HomeAccount(1000, 1000, "the owner of the image's home, moved aside to /home/dev.packet-image"), HomeAccount.Resolve(linked, passwd, Options).Account);
        Assert.Equal(new HomeAccount(1001, 1001, "the /etc/passwd account whose home is /home/dev, dev"), HomeAccount.Resolve(cleared, passwd, Options).Account);
    }

    [Fact]
    public void Without_an_image_home_or_a_passwd_entry_there_is_no_account_and_the_fix_is_named()
    {
        var choice = HomeAccount.Resolve(new PathTablePosix().Symlink("/home/dev", "/workspace/home"), new Passwd(), Options);

        Assert.Null(choice.Account);
        Assert.Equal("/home/dev is not a directory of the image's own (a link, or a mounted volume) and no /etc/passwd account has it as its home; name the account with --user UID[:GID]", choice.Unknown);
    }
}

public sealed class SessionEnvironmentCapTests
{
    [Fact]
    public void Variables_under_the_cap_are_given_as_they_are()
    {
        var sessions = new Dictionary<string, string> { ["A_PORT"] = "1", ["B"] = "2" };

        Assert.Same(sessions, SshdConfig.Capped(sessions, out string? note));
        Assert.Null(note);
    }

    [Fact]
    public void Service_links_go_first_and_the_api_servers_address_stays()
    {
        var sessions = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["KUBERNETES_SERVICE_HOST"] = "10.0.0.1", ["KUBERNETES_SERVICE_PORT"] = "443", ["KUBERNETES_PORT"] = "tcp://10.0.0.1:443" };
        for (int i = 0; i < SshdConfig.MaxSessionVariables; i++)
        {
            sessions[$"V{i:D4}"] = "x";
        }

        var capped = SshdConfig.Capped(sessions, out string? note);

        Assert.Equal(SshdConfig.MaxSessionVariables, capped.Count);
        Assert.Equal("10.0.0.1", capped["KUBERNETES_SERVICE_HOST"]);
        Assert.False(capped.ContainsKey("KUBERNETES_PORT"));
        Assert.False(capped.ContainsKey("V0898"));
        Assert.Equal("sessions get 900 of the pod's 903 variables: sshd ends a session with 1,000; left out: 1 Kubernetes service-link variables (such as KUBERNETES_PORT; the Services' DNS names reach the same) and 2 more, the last in order (V0898, V0899)", note);
    }

    [Theory]
    [InlineData("REDIS_SERVICE_HOST", true)]
    [InlineData("REDIS_SERVICE_PORT", true)]
    [InlineData("REDIS_SERVICE_PORT_HTTP", true)]
    [InlineData("REDIS_PORT", true)]
    [InlineData("REDIS_PORT_6379_TCP", true)]
    [InlineData("REDIS_PORT_6379_TCP_ADDR", true)]
    [InlineData("REDIS_PORT_53_UDP_PROTO", true)]
    [InlineData("REDIS_PORT_9_SCTP_PORT", true)]
    [InlineData("KUBERNETES_SERVICE_HOST", false)]
    [InlineData("KUBERNETES_SERVICE_PORT_HTTPS", false)]
    [InlineData("KUBERNETES_PORT", true)]
    [InlineData("REDIS_SERVICE_PORT_", false)]
    [InlineData("REDIS_PORT_6379_TCP_NAME", false)]
    [InlineData("REDIS_PORT_X_TCP", false)]
    [InlineData("REDIS_PORT_6379_HTTP", false)]
    [InlineData("REDIS_PORT_6379", false)]
    [InlineData("REDIS_PORTAL", false)]
    [InlineData("REDIS_HOSTNAME", false)]
    [InlineData("APP_PORT", false)]
    [InlineData("MY_SERVICE_HOSTNAME", false)]
    [InlineData("APP_SERVICE_PORT", false)]
    public void Service_links_are_the_kubelets_names_beside_a_services_host(string name, bool link)
    {
        var variables = new Dictionary<string, string> { ["REDIS_SERVICE_HOST"] = "10.0.0.9", ["KUBERNETES_SERVICE_HOST"] = "10.0.0.1", [name] = "x" };

        Assert.Equal(link, SshdConfig.ServiceLinks(variables).Contains(name));
    }

    [Fact]
    public void Past_the_cap_path_and_the_locale_stay_and_the_last_other_names_go()
    {
        var sessions = new Dictionary<string, string> { ["PATH"] = "/usr/bin", ["PACKET_POD_PATH"] = "/usr/bin", ["LANG"] = "C.UTF-8", ["LC_ALL"] = "C.UTF-8", ["LANGUAGE"] = "en" };
        for (int i = 0; i < SshdConfig.MaxSessionVariables; i++)
        {
            sessions[$"A{i:D4}"] = "x";
        }

        var capped = SshdConfig.Capped(sessions, out string? note);

        Assert.Equal(SshdConfig.MaxSessionVariables, capped.Count);
        Assert.All(["PATH", "PACKET_POD_PATH", "LANG", "LC_ALL", "LANGUAGE"], name => Assert.True(capped.ContainsKey(name), name));
        Assert.True(capped.ContainsKey("A0894"));
        Assert.False(capped.ContainsKey("A0895"));
        Assert.EndsWith("left out: 5 more, the last in order (A0895, A0896, A0897, A0898, A0899)", note);
    }

    [Fact]
    public void Bytes_that_are_not_utf8_go_back_as_they_came_and_a_pods_comment_as_utf8()
    {
        byte[] file = [0x23, 0x20, 0xE9, 0xFF, 0x0A, 0x00, 0x80];
        var key = AuthorizedKeysBlock.AsBytes(new PublicKey("ssh-ed25519", "AAAA", "josé"));

        Assert.Equal(file, AuthorizedKeysBlock.ToBytes(AuthorizedKeysBlock.FromBytes(file)));
        Assert.Equal("jos\u00C3\u00A9", key.Comment);
        Assert.Equal("ssh-ed25519 AAAA josé"u8.ToArray(), AuthorizedKeysBlock.ToBytes(key.Line));
        Assert.Equal("not given to sessions (a newline in the value, or not a name): A, B", SshdConfig.LeftOutNote(["A", "B"]));
        Assert.Null(SshdConfig.LeftOutNote([]));
    }

    [Fact]
    public void Inside_a_session_a_runtime_directory_that_is_not_the_users_alone_is_not_read_and_the_boot_says_why()
    {
        var files = new System.IO.Abstractions.TestingHelpers.MockFileSystem();
        files.AddDirectory("/tmp/packet-agent-1000");
        var session = new Hashtable { ["SSH_CONNECTION"] = "1 2 3 4" };

        var refused = PodEnvironment.Resolve(files, "/tmp/packet-agent-1000", () => "it belongs to uid 65534", session);
        var missing = PodEnvironment.Resolve(files, "/tmp/elsewhere", () => throw new InvalidOperationException("looked at a directory that is not there"), session);

        Assert.Same(session, refused.Variables);
        Assert.Equal("inside an SSH session, but the pod's recorded environment is not used: it belongs to uid 65534", refused.NotUsed);
        Assert.Same(session, missing.Variables);
        Assert.Null(missing.NotUsed);
    }
}
