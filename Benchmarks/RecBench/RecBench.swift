import ArgumentParser

@main
struct RecBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommender-bench",
        abstract: "Sizes hardware: scoring kernels against bare OpenBLAS, and model training speed.",
        subcommands: [KernelBench.self, TrainingBench.self],
        defaultSubcommand: KernelBench.self)
}
