using Packet.Agent.Profile;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class ManagedBlockTests
{
    private static readonly IReadOnlyList<WorkspaceVariable> Bin = WorkspaceEnvironment.For("/workspace", _ => false);
    private static readonly string Block = ManagedBlock.Render(Bin) + "\n";

    [Fact]
    public void The_block_is_exactly_the_contract_text() =>
        Assert.Equal("# >>> packet-persist >>>\n[ -n \"${PACKET_POD_PATH:-}\" ] && case \":$PATH:\" in *\":$PACKET_POD_PATH:\"*) ;; *) export PATH=\"$PACKET_POD_PATH:$PATH\" ;; esac\ncase \":$PATH:\" in *\":/workspace/bin:\"*) ;; *) export PATH=\"/workspace/bin:$PATH\" ;; esac\n# <<< packet-persist <<<\n", Block);

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
        Assert.Contains("case \":$PATH:\" in *\":/mnt/data/bin:\"*) ;; *) export PATH=\"/mnt/data/bin:$PATH\" ;; esac", ManagedBlock.Apply(string.Empty, WorkspaceEnvironment.For("/mnt/data", _ => false)));

    [Fact]
    public void Persisted_caches_and_the_venv_join_the_block_when_their_directories_exist()
    {
        var present = new HashSet<string> { "venv", ".cache/huggingface", ".cache/pip", "envs", "pip-packages" };

        string block = ManagedBlock.Render(WorkspaceEnvironment.For("/workspace", present.Contains));

        Assert.Equal(
            string.Join('\n',
                "# >>> packet-persist >>>",
                "[ -n \"${PACKET_POD_PATH:-}\" ] && case \":$PATH:\" in *\":$PACKET_POD_PATH:\"*) ;; *) export PATH=\"$PACKET_POD_PATH:$PATH\" ;; esac",
                "case \":$PATH:\" in *\":/workspace/bin:\"*) ;; *) export PATH=\"/workspace/bin:$PATH\" ;; esac",
                "case \":$PATH:\" in *\":/workspace/venv/bin:\"*) ;; *) export PATH=\"/workspace/venv/bin:$PATH\" ;; esac",
                "export HF_HOME=\"${HF_HOME:-/workspace/.cache/huggingface}\"",
                "export PIP_CACHE_DIR=\"${PIP_CACHE_DIR:-/workspace/.cache/pip}\"",
                "export CONDA_ENVS_DIRS=\"${CONDA_ENVS_DIRS:-/workspace/envs}\"",
                "export PYTHONPATH=\"/workspace/pip-packages${PYTHONPATH:+:$PYTHONPATH}\"",
                "# <<< packet-persist <<<"),
            block);
    }

    [Fact]
    public void A_block_that_gained_a_line_is_replaced_in_place_not_duplicated()
    {
        string before = "a\n" + Block + "b\n";

        string after = ManagedBlock.Apply(before, WorkspaceEnvironment.For("/workspace", p => p == ".cache/huggingface"));

        Assert.Equal(1, after.Split('\n').Count(line => line == ManagedBlock.Start));
        Assert.StartsWith("a\n# >>> packet-persist >>>\n[ -n \"${PACKET_POD_PATH:-}\" ] && case \":$PATH:\" in *\":$PACKET_POD_PATH:\"*) ;; *) export PATH=\"$PACKET_POD_PATH:$PATH\" ;; esac\ncase \":$PATH:\" in *\":/workspace/bin:\"*) ;; *) export PATH=\"/workspace/bin:$PATH\" ;; esac\nexport HF_HOME=", after);
        Assert.EndsWith("# <<< packet-persist <<<\nb\n", after);
    }

    [Fact]
    public void The_block_ends_with_a_banner_that_only_interactive_shells_show_and_only_after_warnings()
    {
        string block = ManagedBlock.Render(Bin, "/workspace/.packet/last-boot.warnings");

        Assert.Contains("case $- in *i*) [ -s \"/workspace/.packet/last-boot.warnings\" ] && printf", block);
        Assert.EndsWith("run: packet-agent status\\n' \"$(head -c 512 \"/workspace/.packet/last-boot.warnings\" | cat -v)\" >&2;; esac\n# <<< packet-persist <<<", block);
    }

    [Fact]
    public void Content_that_ends_with_a_blank_line_gets_no_second_one() =>
        Assert.Equal("alias ll='ls -l'\n\n" + Block, ManagedBlock.Apply("alias ll='ls -l'\n\n", Bin));

    [Fact]
    public void A_block_without_a_final_newline_is_given_one() =>
        Assert.Equal("a\n" + Block, ManagedBlock.Apply("a\n" + Block.TrimEnd('\n'), Bin));

    [Theory]
    [InlineData("# packet-persist marker\nexport EDITOR=vim\n", "export EDITOR=vim\n")]
    [InlineData("before\n# packet-persist marker\n", "")]
    [InlineData("before\n# packet-persist marker\n  export PATH=\"/workspace/bin:$PATH\"  \nafter\n", "after\n")]
    public void The_legacy_marker_takes_the_legacy_export_after_it_and_nothing_else(string text, string kept)
    {
        string updated = ManagedBlock.Apply(text, Bin);

        Assert.Equal((text.StartsWith("before", StringComparison.Ordinal) ? "before\n" : string.Empty) + Block + kept, updated);
    }

    [Theory]
    [InlineData("export EDITOR=\"vim\"")]
    [InlineData("PATH=\"/opt/tools/bin:$PATH\"")]
    [InlineData("export PATH=\"/opt/tools/bin:$PATH\"; echo \"hi\"")]
    [InlineData("export PATH=\"/opt/tools/bin:$HOME\"")]
    [InlineData("case \":$PATH:\" in *\":/opt/tools:\"*) echo yes ;; esac")]
    [InlineData("echo case \":$PATH:\" in *\":/x/bin:$PATH\" ;; esac")]
    public void An_unterminated_last_block_keeps_a_next_line_that_is_not_its_own_PATH_line(string line) =>
        Assert.Equal(Block + line + "\n", ManagedBlock.Apply("# >>> packet-persist >>>\n" + line + "\n", Bin));

    [Theory]
    [InlineData("export PATH=\"/old/bin:$PATH\"")]
    [InlineData("case \":$PATH:\" in *\":/old/bin:\"*) ;; *) export PATH=\"/old/bin:$PATH\" ;; esac")]
    public void An_unterminated_last_block_takes_its_PATH_line_of_either_form(string line) =>
        Assert.Equal(Block + "tail\n", ManagedBlock.Apply("# >>> packet-persist >>>\n" + line + "\ntail\n", Bin));

    [Fact]
    public void An_unterminated_block_as_the_last_line_is_replaced() =>
        Assert.Equal("a\n" + Block, ManagedBlock.Apply("a\n# >>> packet-persist >>>\n", Bin));

    [Fact]
    public void An_unterminated_block_ends_where_the_next_block_starts()
    {
        string text = "top\n# >>> packet-persist >>>\nexport PATH=\"/old/bin:$PATH\"\n" + Block + "after\n";

        Assert.Equal("top\n" + Block + "after\n", ManagedBlock.Apply(text, Bin));
    }
}
