package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/spf13/cobra"
)

func storageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "storage", Short: "Format and inspect metadata directories (like kafka-storage.sh)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "random-uuid",
		Short: "Print a new random cluster id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), metadatalog.RandomUUID())
			return nil
		},
	})

	var (
		configFile, clusterID, release string
		nodeID                         int32
		overrides                      []string
		ignoreFormatted                bool
	)
	format := &cobra.Command{
		Use:   "format --config FILE [--node-id N] --cluster-id ID [--release-version V] [--ignore-formatted]",
		Short: "Format a node's metadata directory for a cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile, nodeID, overrides)
			if err != nil {
				return err
			}
			mv := metadatalog.LatestMetadataVersion
			if release != "" {
				if mv, err = metadatalog.LookupMetadataVersion(release); err != nil {
					return fmt.Errorf("--release-version: %w", err)
				}
			}
			_, readErr := metadatalog.ReadMetaProperties(cfg.MetadataLogDir)
			if err := metadatalog.Format(cfg.MetadataLogDir, metadatalog.MetaProperties{ClusterID: clusterID, NodeID: cfg.NodeID}, metadatalog.BootstrapRecords(mv), ignoreFormatted); err != nil {
				return err
			}
			if readErr == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "All of the log directories are already formatted: %s\n", cfg.MetadataLogDir)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Formatting metadata directory %s with metadata.version %s.\n", cfg.MetadataLogDir, mv.Name)
			return nil
		},
	}
	format.Flags().StringVarP(&configFile, "config", "c", "", "configuration file (required)")
	format.Flags().Int32Var(&nodeID, "node-id", -1, "node of a whole-cluster file")
	format.Flags().StringArrayVar(&overrides, "override", nil, "key=value that wins over the file (repeatable)")
	format.Flags().StringVarP(&clusterID, "cluster-id", "t", "", "cluster id (from `kraftctl storage random-uuid`) (required)")
	format.Flags().StringVarP(&release, "release-version", "r", "", "metadata.version to start at (default: the latest)")
	format.Flags().BoolVarP(&ignoreFormatted, "ignore-formatted", "g", false, "leave a directory already formatted for this cluster and node as it is")
	format.MarkFlagRequired("config")
	format.MarkFlagRequired("cluster-id")
	cmd.AddCommand(format)

	var infoConfig string
	var infoNode int32
	var infoOverrides []string
	info := &cobra.Command{
		Use:   "info --config FILE [--node-id N]",
		Short: "Show what a node's metadata directory is formatted for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(infoConfig, infoNode, infoOverrides)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			mp, err := metadatalog.ReadMetaProperties(cfg.MetadataLogDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Found log directory:\n  %s\n\n", cfg.MetadataLogDir)
			props := map[string]string{"cluster.id": mp.ClusterID, "node.id": fmt.Sprint(mp.NodeID), "directory.id": mp.DirectoryID, "version": "1"}
			keys := make([]string, 0, len(props))
			for k := range props {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = k + "=" + props[k]
			}
			fmt.Fprintf(out, "Found metadata: {%s}\n", strings.Join(parts, ", "))
			if b, err := metadatalog.ReadBootstrap(cfg.MetadataLogDir); err == nil {
				for _, r := range b.GetRecords() {
					if f := r.GetFeatureLevel(); f != nil && f.GetName() == metadatalog.MetadataVersionFeature {
						if mv, ok := metadatalog.MetadataVersionByLevel(int16(f.GetFeatureLevel())); ok {
							fmt.Fprintf(out, "Bootstrap metadata.version: %s\n", mv.Name)
						}
					}
				}
			} else {
				return err
			}
			return nil
		},
	}
	info.Flags().StringVarP(&infoConfig, "config", "c", "", "configuration file (required)")
	info.Flags().Int32Var(&infoNode, "node-id", -1, "node of a whole-cluster file")
	info.Flags().StringArrayVar(&infoOverrides, "override", nil, "key=value that wins over the file (repeatable)")
	info.MarkFlagRequired("config")
	cmd.AddCommand(info)
	return cmd
}
