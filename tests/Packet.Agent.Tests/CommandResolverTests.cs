using Packet.Agent.Exec;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class CommandResolverTests
{
    [Fact]
    public void The_first_executable_on_PATH_wins()
    {
        var fileSystem = FakeFileSystem.With("/a/tool", "/b/tool");
        var resolver = FakeFileSystem.Resolver(fileSystem, "/a/tool", "/b/tool");

        Assert.Equal("/a/tool", resolver.Resolve("tool", "/a:/b").Path);
    }

    [Fact]
    public void A_match_that_is_not_executable_is_passed_over_like_a_shell_does()
    {
        var fileSystem = FakeFileSystem.With("/a/tool", "/b/tool");
        var resolver = FakeFileSystem.Resolver(fileSystem, "/b/tool");

        Assert.Equal("/b/tool", resolver.Resolve("tool", "/a:/b").Path);
    }

    [Fact]
    public void Only_non_executable_matches_give_126()
    {
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With("/a/tool"));

        var resolution = resolver.Resolve("tool", "/a");

        Assert.False(resolution.Found);
        Assert.Equal(126, resolution.ExitCode);
        Assert.Contains("/a/tool is not executable", resolution.Failure);
    }

    [Fact]
    public void No_match_gives_127_and_names_the_PATH_searched()
    {
        var resolution = FakeFileSystem.Resolver(FakeFileSystem.With()).Resolve("tool", "/a:/b");

        Assert.Equal(127, resolution.ExitCode);
        Assert.Contains("not found in PATH (/a:/b)", resolution.Failure);
    }

    [Fact]
    public void An_empty_PATH_entry_means_the_current_directory()
    {
        var fileSystem = FakeFileSystem.With("/work/tool");
        fileSystem.Directory.SetCurrentDirectory("/work");
        var resolver = FakeFileSystem.Resolver(fileSystem, "./tool");

        Assert.Equal("./tool", resolver.Resolve("tool", "/a::/b").Path);
    }

    [Theory]
    [InlineData("/opt/run.sh", true, 0)]
    [InlineData("/opt/missing", false, 127)]
    [InlineData("/opt", false, 126)]
    public void A_name_with_a_slash_is_used_as_it_is(string command, bool found, int exitCode)
    {
        var fileSystem = FakeFileSystem.With("/opt/run.sh");
        var resolution = FakeFileSystem.Resolver(fileSystem, "/opt/run.sh").Resolve(command, "/usr/bin");

        Assert.Equal(found, resolution.Found);
        Assert.Equal(exitCode, resolution.ExitCode);
    }

    [Fact]
    public void An_empty_command_is_not_found() =>
        Assert.Equal(new CommandResolution(null, 127, "the command is empty"), FakeFileSystem.Resolver(FakeFileSystem.With("/a/tool"), "/a/tool").Resolve(string.Empty, "/a"));

    [Fact]
    public void Of_several_matches_none_executable_the_first_is_named()
    {
        var resolution = FakeFileSystem.Resolver(FakeFileSystem.With("/a/tool", "/b/tool")).Resolve("tool", "/a:/b");

        Assert.Equal(new CommandResolution(null, 126, "/a/tool is not executable (permission denied)"), resolution);
    }

    [Fact]
    public void A_path_to_a_file_that_is_not_executable_gives_126_and_says_why()
    {
        var resolution = FakeFileSystem.Resolver(FakeFileSystem.With("/opt/run.sh")).Resolve("/opt/run.sh", "/usr/bin");

        Assert.Equal(new CommandResolution(null, 126, "/opt/run.sh is not executable (permission denied)"), resolution);
    }
}
