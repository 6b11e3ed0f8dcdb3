using Packet.Agent.Profile;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class ManagedBlockTests
{
    private const string Bin = "/workspace/bin";
    private static readonly string Block = ManagedBlock.Render(Bin) + "\n";

    [Fact]
    public void The_block_is_exactly_the_contract_text() =>
        Assert.Equal("# >>> packet-persist >>>\nexport PATH=\"/workspace/bin:$PATH\"\n# <<< packet-persist <<<\n", Block);

    [Fact]
    public void An_empty_file_gets_the_block() => Assert.Equal(Block, ManagedBlock.Apply(string.Empty, Bin));

    [Fact]
    public void The_block_is_appended_after_the_users_content_with_a_blank_line() =>
        Assert.Equal("alias ll='ls -l'\n\n" + Block, ManagedBlock.Apply("alias ll='ls -l'\n", Bin));

    [Fact]
    public void A_file_without_a_final_newline_keeps_its_last_line_intact() =>
        Assert.Equal("alias ll='ls -l'\n\n" + Block, ManagedBlock.Apply("alias ll='ls -l'", Bin));

    [Fact]
    public void Applying_twice_changes_nothing_and_returns_the_same_instance()
    {
        string once = ManagedBlock.Apply("export A=1\n", Bin);

        Assert.Same(once, ManagedBlock.Apply(once, Bin));
    }

    [Fact]
    public void A_stale_block_is_replaced_in_place_leaving_the_rest_untouched()
    {
        string text = "before\n# >>> packet-persist >>>\nexport PATH=\"/old/bin:$PATH\"\n# <<< packet-persist <<<\nafter\n";

        Assert.Equal("before\n" + Block + "after\n", ManagedBlock.Apply(text, Bin));
    }

    [Fact]
    public void The_bash_scripts_legacy_lines_are_replaced_by_the_block_in_place()
    {
        string text = "before\n# packet-persist marker\nexport PATH=\"/workspace/bin:$PATH\"\nafter\n";

        string updated = ManagedBlock.Apply(text, Bin);

        Assert.Equal("before\n" + Block + "after\n", updated);
        Assert.Single(updated.Split('\n'), line => line.Contains("/workspace/bin", StringComparison.Ordinal));
    }

    [Fact]
    public void Duplicate_blocks_collapse_into_the_first()
    {
        string text = Block + "middle\n" + Block + "# packet-persist marker\nexport PATH=\"/workspace/bin:$PATH\"\n";

        Assert.Equal(Block + "middle\n", ManagedBlock.Apply(text, Bin));
    }

    [Fact]
    public void An_unterminated_block_takes_only_its_own_lines()
    {
        string text = "# >>> packet-persist >>>\nexport PATH=\"/workspace/bin:$PATH\"\nexport EDITOR=vim\n";

        Assert.Equal(Block + "export EDITOR=vim\n", ManagedBlock.Apply(text, Bin));
    }

    [Fact]
    public void The_block_names_the_configured_workspace() =>
        Assert.Contains("export PATH=\"/mnt/data/bin:$PATH\"", ManagedBlock.Apply(string.Empty, "/mnt/data/bin"));
}
