using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Following a dotfile manager's link inside the persisted home, and refusing every way out of it.</summary>
public sealed class LinkInsideHomeTests : IDisposable
{
    private const string LiveHome = "/root";
    private const string Fix = "; the agent follows a link there only inside the home. Make it a link inside ";

    private readonly TempDirectory _dir = new("link-inside-home");

    public LinkInsideHomeTests()
    {
        Home = _dir.Create("workspace/home");
    }

    private string Home { get; }

    public void Dispose() => _dir.Dispose();

    private (string Path, string Name, string Directory) Resolve(string name = ".bashrc", string liveHome = LiveHome)
    {
        using (var home = DirectoryHandle.Open(new FaultyPosix(), Home))
        using (var file = LinkInsideHome.Resolve(home, name, liveHome))
        {
            Assert.Equal(file.Directory.Path, Path.GetDirectoryName(file.Path));
            return (file.Path, file.Name, file.Directory.Path);
        }
    }

    private string Refusal(string name = ".bashrc")
    {
        using var home = DirectoryHandle.Open(new FaultyPosix(), Home);
        string message = Assert.Throws<UnsafeWorkspaceException>(() => LinkInsideHome.Resolve(home, name, LiveHome)).Message;
        Assert.Equal([Home], OpenDescriptors.Under(Home));
        Assert.Contains($"{Fix}{Home} (a relative one, as GNU stow makes), or a plain file", message, StringComparison.Ordinal);
        return message;
    }

    [Fact]
    public void A_plain_file_or_a_missing_one_is_itself()
    {
        HomeFixture.Write(Home, ".profile", "x");

        Assert.Equal((Path.Join(Home, ".profile"), ".profile", Home), Resolve(".profile"));
        Assert.Equal((Path.Join(Home, ".bashrc"), ".bashrc", Home), Resolve());
    }

    [Fact]
    public void A_relative_link_is_followed_through_directories_and_dot_segments()
    {
        HomeFixture.Write(Home, "dotfiles/bash/bashrc", "x");
        HomeFixture.Symlink(Home, "./dotfiles//other/../bash/bashrc", ".bashrc");
        Directory.CreateDirectory(Path.Join(Home, "dotfiles/other"));

        Assert.Equal((Path.Join(Home, "dotfiles/bash/bashrc"), "bashrc", Path.Join(Home, "dotfiles/bash")), Resolve());
    }

    [Fact]
    public void A_chain_of_links_is_followed_each_from_its_own_directory()
    {
        HomeFixture.Write(Home, "a/b/real", "x");
        HomeFixture.Symlink(Home, "b/hop", "a/first");
        HomeFixture.Symlink(Home, "real", "a/b/hop");
        HomeFixture.Symlink(Home, "a/first", ".bashrc");

        Assert.Equal(Path.Join(Home, "a/b/real"), Resolve().Path);
    }

    [Fact]
    public void An_absolute_link_under_the_persisted_or_the_live_home_is_followed()
    {
        HomeFixture.Write(Home, ".local/share/chezmoi/bashrc", "x");
        HomeFixture.Symlink(Home, $"{LiveHome}/.local/share/chezmoi/bashrc", ".bashrc");
        HomeFixture.Symlink(Home, $"{Home}/.local/share/chezmoi/bashrc", ".profile");

        Assert.Equal(Path.Join(Home, ".local/share/chezmoi/bashrc"), Resolve().Path);
        Assert.Equal(Path.Join(Home, ".local/share/chezmoi/bashrc"), Resolve(".profile").Path);
        Assert.Equal(Path.Join(Home, ".local/share/chezmoi/bashrc"), Resolve(".bashrc", liveHome: LiveHome + "/").Path);
    }

    [Fact]
    public void A_link_out_of_the_home_is_refused_whichever_way_it_leaves()
    {
        HomeFixture.Symlink(Home, "/etc/bash.bashrc", ".bashrc");
        HomeFixture.Symlink(Home, "../../outside", ".profile");
        HomeFixture.Symlink(Home, "/rootkit/.bashrc", ".zshrc");

        Assert.StartsWith($"refusing {Path.Join(Home, ".bashrc")}: it links to /etc/bash.bashrc, outside the persisted home", Refusal(), StringComparison.Ordinal);
        Assert.Contains("its target ../../outside climbs out of the persisted home", Refusal(".profile"), StringComparison.Ordinal);
        Assert.Contains("it links to /rootkit/.bashrc, outside the persisted home", Refusal(".zshrc"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_link_to_the_home_itself_or_a_loop_is_refused()
    {
        HomeFixture.Symlink(Home, ".", ".bashrc");
        HomeFixture.Symlink(Home, "loop-b", "loop-a");
        HomeFixture.Symlink(Home, "loop-a", "loop-b");

        Assert.Contains("it links to the home itself (.)", Refusal(), StringComparison.Ordinal);
        Assert.Contains("it is a chain of more than 40 symlinks", Refusal("loop-a"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_chain_of_exactly_40_links_is_followed()
    {
        HomeFixture.Write(Home, "end", "x");
        HomeFixture.Symlink(Home, "end", "link-40");
        for (int i = 39; i >= 1; i--)
        {
            HomeFixture.Symlink(Home, $"link-{i + 1}", $"link-{i}");
        }

        Assert.Equal(Path.Join(Home, "end"), Resolve("link-1").Path);
    }

    [Fact]
    public void A_directory_on_the_way_that_is_itself_a_link_is_refused()
    {
        HomeFixture.Write(_dir.Path, "elsewhere/bashrc", "x");
        HomeFixture.Symlink(Home, Path.Join(_dir.Path, "elsewhere"), "dotfiles");
        HomeFixture.Symlink(Home, "dotfiles/bashrc", ".bashrc");
        using var home = DirectoryHandle.Open(new FaultyPosix(), Home);

        var refusal = Assert.Throws<UnsafeWorkspaceException>(() => LinkInsideHome.Resolve(home, ".bashrc", LiveHome));

        Assert.Equal($"refusing {Path.Join(Home, "dotfiles")}: it is a symlink, and the agent never follows a symlink inside the workspace", refusal.Message);
        Assert.Equal([Home], OpenDescriptors.Under(Home));
    }
}
