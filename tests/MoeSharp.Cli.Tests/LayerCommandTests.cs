using MoeSharp.Tensors;
using MoeSharp.Tests.Checkpoints;

namespace MoeSharp.Tests.Cli;

/// <summary><c>moe layer</c>: a family's layer from its checkpoint to y, and the exit-2 errors.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class LayerCommandTests
{
    [Theory]
    [InlineData("deepseek_v3", 2, "host")]
    [InlineData("qwen2_moe", 1, "ilgpu-cpu")] // the shared expert gate and the loader's staging on a device backend
    [InlineData("deepseek_v3_negative_bias", 1, "ilgpu-cpu")] // the ILGPU top-k with 0.0-masked discarded groups
    public void Layer_writes_y_within_tolerance_and_prints_the_routing_load(string family, int layer, string device)
    {
        string folder = CheckpointData.Folder(family);
        string output = Path.Combine(Path.GetTempPath(), $"moe-layer-{Guid.NewGuid():N}.safetensors");
        try
        {
            var result = CliTests.Invoke(
                "layer",
                "--checkpoint",
                folder,
                "--layer",
                $"{layer}",
                "--input",
                Path.Combine(folder, "input.safetensors"),
                "--output",
                output,
                "--world",
                "4",
                "--sp",
                "2",
                "--device",
                device
            );
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("routing load", result.Out);
            Assert.Contains("forward", result.Out);
            Tensor y = SafetensorsFile.Read(output)["y"];
            Assert.True(CheckpointData.RelativeError(y, CheckpointData.Expected(family, layer)) < 1e-4);
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public void Help_renders()
    {
        // Spectre reads descriptions as markup: an unescaped [T, D] made --help fail with exit 1.
        var result = CliTests.Invoke("layer", "--help");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Empty(result.Error);
    }

    [Fact]
    public void Random_tokens_run_without_an_input()
    {
        var result = CliTests.Invoke(
            "layer",
            "--checkpoint",
            CheckpointData.Folder("mixtral"),
            "--layer",
            "1",
            "--tokens",
            "5"
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("T 5", result.Out);
    }

    [Fact]
    public void A_dense_layer_is_exit_2_naming_the_layer()
    {
        var result = CliTests.Invoke("layer", "--checkpoint", CheckpointData.Folder("deepseek_v3"), "--layer", "0");
        CliTests.AssertUsageError(result);
        Assert.Contains("layer 0 is a dense MLP layer", result.Error);
        Assert.Contains("first_k_dense_replace", result.Error);
    }

    [Fact]
    public void A_missing_tensor_is_exit_2_naming_the_layer_and_the_tensor()
    {
        string source = CheckpointData.Folder("qwen3_moe");
        string folder = Directory.CreateTempSubdirectory("moe-layer-missing-").FullName;
        try
        {
            File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
            const string dropped = "model.layers.1.mlp.experts.6.down_proj.weight";
            SafetensorsContent all = SafetensorsFile.Read(Path.Combine(source, "model.safetensors"));
            SafetensorsFile.Write(Path.Combine(folder, "model.safetensors"), all.Where(kv => kv.Key != dropped));
            var result = CliTests.Invoke("layer", "--checkpoint", folder, "--layer", "1", "--world", "2");
            CliTests.AssertUsageError(result);
            Assert.Contains("layer 1", result.Error);
            Assert.Contains(dropped, result.Error);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData(20_000_000)]
    [InlineData(int.MaxValue)]
    public void A_huge_num_experts_is_exit_2_naming_config_json_and_the_key(int experts)
    {
        // It used to list 3·E expert tensors before checking the gate: 14.8 GB and 46 s for E = 20000000.
        string source = CheckpointData.Folder("qwen3_moe");
        string folder = Directory.CreateTempSubdirectory("moe-layer-huge-e-").FullName;
        try
        {
            string config = File.ReadAllText(Path.Combine(source, "config.json"));
            Assert.Contains("\"num_experts\": 8,", config);
            File.WriteAllText(
                Path.Combine(folder, "config.json"),
                config.Replace("\"num_experts\": 8,", $"\"num_experts\": {experts},", StringComparison.Ordinal)
            );
            File.Copy(Path.Combine(source, "model.safetensors"), Path.Combine(folder, "model.safetensors"));
            var result = CliTests.Invoke("layer", "--checkpoint", folder, "--layer", "1");
            CliTests.AssertUsageError(result);
            Assert.Contains(
                $"config.json: 'num_experts' is {experts}; MoeSharp reads at most 1048576 routed experts",
                result.Error
            );
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_shard_whose_shape_overflows_is_exit_2_naming_the_file_and_the_tensor()
    {
        string folder = Directory.CreateTempSubdirectory("moe-layer-overflow-").FullName;
        try
        {
            File.Copy(
                Path.Combine(CheckpointData.Folder("mixtral"), "config.json"),
                Path.Combine(folder, "config.json")
            );
            // 2^64 elements: the lazy reader's element count overflowed, a bare OverflowException and exit 3.
            byte[] header = System.Text.Encoding.UTF8.GetBytes(
                "{\"A\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}"
            );
            string shard = Path.Combine(folder, "model.safetensors");
            File.WriteAllBytes(shard, [.. BitConverter.GetBytes((ulong)header.Length), .. header]);
            var result = CliTests.Invoke("layer", "--checkpoint", folder, "--layer", "0");
            CliTests.AssertUsageError(result);
            Assert.Contains($"{shard}: tensor 'A': F32 [4294967296,4294967296] has more than", result.Error);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_checkpoint_without_the_layers_tensors_is_refused_by_name_before_the_layer_is_built()
    {
        // A config for a 103 GB layer beside a shard that holds none of its tensors: the missing router gate is the
        // answer, not the size of weights the checkpoint cannot fill (the layer used to be built before the check).
        string folder = Directory.CreateTempSubdirectory("moe-layer-empty-").FullName;
        try
        {
            File.WriteAllText(
                Path.Combine(folder, "config.json"),
                """
                {"model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 1, "num_experts_per_tok": 2,
                 "intermediate_size": 4096, "num_local_experts": 512}
                """
            );
            SafetensorsFile.Write(
                Path.Combine(folder, "model.safetensors"),
                [new("model.embed_tokens.weight", Tensor.Zeros(DType.Float32, 2, 4))]
            );
            var result = CliTests.Invoke("layer", "--checkpoint", folder, "--layer", "0", "--world", "4");
            CliTests.AssertUsageError(result);
            Assert.Contains(
                $"{folder}: layer 0: missing tensor 'model.layers.0.block_sparse_moe.gate.weight'",
                result.Error
            );
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Ranks_that_fit_one_at_a_time_but_not_together_are_refused_before_any_rank_starts()
    {
        // 64 in-process ranks whose weights are each a 64th of 1.5 times the available memory: every rank alone fits
        // (the layer's own check passes), all of them together do not. They used to start and allocate until the
        // process ran out of memory (exit 3). 64 ranks keep one expert's [H, D] within a tensor up to 1 TB available.
        const int world = 64,
            dim = 4096;
        long available = MemoryBudget.AvailableHostBytes();
        long hidden = (long)(1.5 * available / (world * 3.0 * dim * sizeof(float))) + 1;
        Assert.True(hidden * dim <= int.MaxValue, $"{available} bytes available: too many for this test's sizes");
        string folder = Directory.CreateTempSubdirectory("moe-layer-world-").FullName;
        try
        {
            SparseCheckpoint.WriteMixtral(folder, dim, (int)hidden, experts: world);
            var result = CliTests.Invoke(
                "layer",
                "--checkpoint",
                folder,
                "--layer",
                "0",
                "--world",
                $"{world}",
                "--tokens",
                "4"
            );
            CliTests.AssertUsageError(result);
            Assert.Contains("of host memory for 64 in-process ranks (world 64 sp 1", result.Error);
            Assert.Contains(Path.Combine(folder, "config.json"), result.Error);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Tokens_no_tensor_can_hold_are_refused_naming_the_option_and_the_config()
    {
        string folder = CheckpointData.Folder("mixtral"); // hidden_size 32
        var result = CliTests.Invoke("layer", "--checkpoint", folder, "--layer", "1", "--tokens", "300000000");
        CliTests.AssertUsageError(result);
        Assert.Contains("--tokens 300000000 × hidden_size 32 of", result.Error);
        Assert.Contains("9600000000 elements", result.Error);
    }

    [Theory]
    [InlineData("--layer", "1")]
    [InlineData("--layer", "1", "--world", "3")]
    [InlineData("--layer", "1", "--input", "/nonexistent/x.safetensors")]
    [InlineData("--layer", "-1")]
    public void Bad_options_are_exit_2(params string[] options)
    {
        string[] args =
            options.Length == 2 && options[1] == "1" && options[0] == "--layer"
                ? ["layer", "--checkpoint", "/nonexistent/checkpoint", .. options]
                : ["layer", "--checkpoint", CheckpointData.Folder("qwen3_moe"), .. options];
        CliTests.AssertUsageError(CliTests.Invoke(args));
    }
}
