using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// A <c>.bashrc</c> that is a symlink, as GNU stow, yadm and chezmoi's symlink mode make it: the
/// block goes into the file it names when that is inside the home, once however many boots; a link
/// out of the home is refused with the reason and the fix, and what it names is left alone.
/// </summary>
public sealed class DotfileManagerTests : IDisposable
{
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private string Persisted(string relative) => Path.Join(_scratch.PersistedHome, relative);

    [Fact]
    public void A_stow_managed_bashrc_gets_the_block_in_its_target_once_and_stays_a_link()
    {
        HomeFixture.Write(_scratch.Home, "dotfiles/bash/.bashrc", "alias ll='ls -l'\n");
        HomeFixture.Symlink(_scratch.Home, "dotfiles/bash/.bashrc", ".bashrc");

        var first = _scratch.Boot();
        var second = _scratch.Boot();

        Assert.True(first.ExitCode == 0 && second.ExitCode == 0, first + "\n" + second);
        Assert.Equal("dotfiles/bash/.bashrc", new FileInfo(Persisted(".bashrc")).LinkTarget);
        Assert.Single(File.ReadAllLines(Persisted("dotfiles/bash/.bashrc")), line => line == "# >>> packet-persist >>>");
        Assert.StartsWith("alias ll='ls -l'\n", File.ReadAllText(Persisted("dotfiles/bash/.bashrc")));
        Assert.Contains(first.ErrorLines, line => line.Contains($"updated the workspace block in {Persisted(".bashrc")} (a link to {Persisted("dotfiles/bash/.bashrc")})", StringComparison.Ordinal));
        Assert.Contains("warnings: 0", second.ErrorLines[^1], StringComparison.Ordinal);
        var shell = ChildProcess.Run("bash", ["-ic", "echo \"$PATH\""], new Dictionary<string, string?> { ["HOME"] = _scratch.PersistedHome, ["PATH"] = "/usr/bin:/bin" });
        Assert.Equal(1, shell.StandardOutput.Split(':').Count(entry => entry.Trim() == Path.Join(_scratch.Workspace, "bin")));
    }

    [Fact]
    public void An_absolute_link_under_the_live_home_as_chezmoi_makes_is_followed_inside_the_persisted_home()
    {
        HomeFixture.Write(_scratch.Home, ".local/share/chezmoi/dot_bashrc", "export EDITOR=vim\n");
        HomeFixture.Symlink(_scratch.Home, Path.Join(_scratch.Home, ".local/share/chezmoi/dot_bashrc"), ".bashrc");

        var result = _scratch.Boot();

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("# >>> packet-persist >>>", File.ReadAllText(Persisted(".local/share/chezmoi/dot_bashrc")));
        Assert.Equal("export EDITOR=vim\n", File.ReadAllText(Path.Join(_scratch.Home, ".local/share/chezmoi/dot_bashrc")));
    }

    [Theory]
    [InlineData("absolute")]
    [InlineData("climbing")]
    public void A_link_out_of_the_home_is_refused_with_the_reason_and_the_fix(string kind)
    {
        string outside = _scratch.Create("outside");
        File.WriteAllText(Path.Join(outside, "bashrc"), "# shared\n");
        string target = kind == "absolute" ? Path.Join(outside, "bashrc") : "../../outside/bashrc";
        HomeFixture.Symlink(_scratch.Home, target, ".bashrc");

        var result = _scratch.Boot();

        Assert.Equal(0, result.ExitCode);
        var warning = Assert.Single(result.ErrorLines, line => line.Contains("warn: profile[4]", StringComparison.Ordinal));
        Assert.Contains($"refusing {Persisted(".bashrc")}: ", warning, StringComparison.Ordinal);
        Assert.Contains(kind == "absolute" ? $"it links to {target}, outside the persisted home" : $"its target {target} climbs out of the persisted home", warning, StringComparison.Ordinal);
        Assert.Contains("Make it a link inside", warning, StringComparison.Ordinal);
        Assert.Equal("# shared\n", File.ReadAllText(Path.Join(outside, "bashrc")));
    }
}
